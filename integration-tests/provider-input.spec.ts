import { ExtraBackend, startExtraBackend, stopExtraBackends } from "./helpers/backend"
import { Api, api, createApi } from "./helpers/http"
import { createPaymentCollection, createRegion, db } from "./helpers/factories"
import { psp, PspOperation } from "./helpers/fake-psp"
import { base } from "./helpers/payments"

// The plugin calls providers directly, so it builds what a provider receives
// itself. With a logged-in customer, every call a storefront's flow makes —
// initiate, update, authorize, and the payment's data — must reach the provider
// as core 1.20.11 sends it (email, context, metadata), for a payment processor
// and for a legacy payment service alike — plus, where core drops it, the
// customer who pays (README, Differences from core), so that a provider can
// keep one customer of its own per Medusa customer.

/** The arguments without the customer object core drops (and the plugin passes). */
function withoutCustomer(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutCustomer)
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>)
        .filter(([key]) => key !== "customer")
        .map(([key, v]) => [key, withoutCustomer(v)])
    )
  }
  return value
}

const CUSTOMER = { email: "input-spec@pcp.test", password: "secret-pass-1", first_name: "Ada", last_name: "Lovelace" }

describe("what reaches a provider is what core sends", () => {
  let core: ExtraBackend
  let coreApi: Api
  let region: any
  let bearer: Record<string, string>

  beforeAll(async () => {
    core = await startExtraBackend({ env: { HOST_WITHOUT_PLUGIN: "1" } })
    coreApi = createApi(core.url)
    region = await createRegion({ providers: ["manual", "test-pay", "test-legacy"] })
    expect((await api.post("/store/customers", CUSTOMER)).status).toBe(200)
    const { rows } = await db.query(`SELECT id FROM customer WHERE email = $1`, [CUSTOMER.email])
    await db.query(`UPDATE customer SET metadata = '{"segment":"vip"}' WHERE id = $1`, [rows[0].id])
    const token = await api.post("/store/auth/token", { email: CUSTOMER.email, password: CUSTOMER.password })
    expect(token.status).toBe(200)
    bearer = { authorization: `Bearer ${token.body.access_token}` }
  }, 180_000)

  beforeEach(() => psp.reset())

  afterAll(async () => {
    await psp.reset()
    await stopExtraBackends()
    await db.end()
  }, 60_000)

  /** The arguments each provider method received for one collection, with its id and generated ids masked. */
  async function receivedBy(collectionId: string, sessionIds: string[]) {
    const calls = await psp.history({ resourceId: collectionId })
    const mask = (value: unknown): unknown =>
      JSON.parse(
        JSON.stringify(value ?? null)
          .split(collectionId)
          .join("<collection>")
          .replace(/pi_[A-Za-z0-9_]+/g, "<intent>")
          .replace(/"client_secret":"[^"]*"/g, '"client_secret":"<secret>"')
          .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/g, "<time>")
          .replace(new RegExp(sessionIds.join("|") || "^$", "g"), "<session>")
      )
    const byMethod: Partial<Record<PspOperation, unknown[]>> = {}
    for (const call of calls) {
      ;(byMethod[call.method] ??= []).push(mask(call.args))
    }
    return byMethod
  }

  /** A logged-in storefront's flow on one backend: create, change the amount, confirm, authorize. */
  async function storefrontFlow(client: Api, providerId: string) {
    const collection = await createPaymentCollection({ regionId: region.id, amount: 1000 })
    const created = await client.post(`${base(collection.id)}/sessions`, { provider_id: providerId }, { headers: bearer })
    expect(created.status).toBe(200)
    const [session] = created.body.payment_collection.payment_sessions
    const batch = await client.post(
      `${base(collection.id)}/sessions/batch`,
      {
        sessions: [
          { provider_id: providerId, amount: 600, session_id: session.id },
          { provider_id: "manual", amount: 400 },
        ],
      },
      { headers: bearer }
    )
    expect(batch.status).toBe(200)
    const sessions = batch.body.payment_collection.payment_sessions
    await psp.confirmSession(sessions.find((s: any) => s.provider_id === providerId))
    const authorized = await client.post(
      `${base(collection.id)}/sessions/batch/authorize`,
      { session_ids: sessions.map((s: any) => s.id) },
      { headers: { ...bearer, "user-agent": "provider-input-spec" } }
    )
    expect(authorized.status).toBe(200)
    return receivedBy(collection.id, sessions.map((s: any) => s.id))
  }

  it.each(["test-pay", "test-legacy"])("%s receives the same arguments from the plugin as from core", async (providerId) => {
    const fromCore = await storefrontFlow(coreApi, providerId)
    const fromPlugin = await storefrontFlow(api, providerId)

    expect(Object.keys(fromPlugin).sort()).toEqual(Object.keys(fromCore).sort())
    expect(fromCore.initiatePayment).toHaveLength(1)
    expect(withoutCustomer(fromPlugin)).toEqual(withoutCustomer(fromCore))
  })

  it("the provider gets the logged-in customer's email, and the customer who pays (core passes none)", async () => {
    const received = await storefrontFlow(api, "test-pay")
    const [initiateArgs] = received.initiatePayment as any[][]
    expect(initiateArgs[0]).toMatchObject({ email: CUSTOMER.email, resource_id: "<collection>", amount: 1000 })
    expect(initiateArgs[0].customer).toEqual({
      id: expect.stringMatching(/^cus_/),
      email: CUSTOMER.email,
      first_name: CUSTOMER.first_name,
      last_name: CUSTOMER.last_name,
      phone: null,
      has_account: true,
      metadata: { segment: "vip" },
    })
    const [updateArgs] = received.updatePayment as any[][]
    expect(updateArgs[0].customer).toEqual(initiateArgs[0].customer)
  })
})
