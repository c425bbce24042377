import { api } from "./helpers/http"
import { createPaymentCollection, createRegion, db } from "./helpers/factories"
import { psp } from "./helpers/fake-psp"

const PLUGIN_HEADER = "x-payment-collections-plugin"

// Core's defaults for "Get a PaymentCollection" (api/routes/store/payment-collections/index.ts):
// fields id, type, status, description, amount, region, currency_code, currency, metadata;
// relations region and payment_sessions.
const DEFAULT_KEYS = [
  "amount",
  "currency_code",
  "description",
  "id",
  "metadata",
  "payment_sessions",
  "region",
  "status",
  "type",
]

function getCollection(id: string, query = "") {
  return api.get(`/store/payment-collections/${id}${query}`)
}

describe("GET /store/payment-collections/:id (Get a PaymentCollection)", () => {
  let region: any

  beforeAll(async () => {
    region = await createRegion({ providers: ["manual", "test-pay"] })
  })

  beforeEach(() => psp.reset())

  afterAll(() => db.end())

  /** A collection with one test-pay session, made through the store API. */
  async function collectionWithSession(amount = 2500) {
    const collection = await createPaymentCollection({ regionId: region.id, amount, description: "Order edit" })
    const res = await api.post(`/store/payment-collections/${collection.id}/sessions`, { provider_id: "test-pay" })
    expect(res.status).toBe(200)
    return { collection, session: res.body.payment_collection.payment_sessions[0] }
  }

  it("answers { payment_collection } with core's default fields and relations, from the plugin's route", async () => {
    const { collection, session } = await collectionWithSession(2500)

    const res = await getCollection(collection.id)

    expect(res.status).toBe(200)
    expect(res.headers[PLUGIN_HEADER]).toMatch(/^medusa-plugin-payment-collections@\d+\.\d+\.\d+/)
    const pc = res.body.payment_collection
    expect(Object.keys(pc).sort()).toEqual(DEFAULT_KEYS)
    expect(pc).toMatchObject({
      id: collection.id,
      type: "order_edit",
      status: "not_paid",
      description: "Order edit",
      amount: 2500,
      currency_code: "usd",
      metadata: null,
    })
    expect(pc.region).toEqual(
      expect.objectContaining({ id: region.id, name: region.name, currency_code: "usd" })
    )
    expect(pc.payment_sessions).toEqual([
      expect.objectContaining({
        id: session.id,
        provider_id: "test-pay",
        amount: 2500,
        status: "pending",
        data: expect.objectContaining({ id: expect.stringMatching(/^pi_/) }),
      }),
    ])
  })

  it("reads only: no provider is called", async () => {
    const { collection } = await collectionWithSession()
    await psp.reset()

    expect((await getCollection(collection.id)).status).toBe(200)

    const { calls } = await psp.state()
    expect(Object.values(calls).reduce((a, b) => a + b, 0)).toBe(0)
  })

  it("?fields=id,amount selects those columns (core keeps its default relations)", async () => {
    const { collection } = await collectionWithSession(1200)

    const res = await getCollection(collection.id, "?fields=id,amount")

    expect(res.status).toBe(200)
    const pc = res.body.payment_collection
    expect(Object.keys(pc).sort()).toEqual(["amount", "id", "payment_sessions", "region"])
    expect(pc).toMatchObject({ id: collection.id, amount: 1200 })
    expect(pc.payment_sessions).toHaveLength(1)
    expect(pc.region.id).toBe(region.id)
  })

  it("?expand=payment_sessions replaces the default relations", async () => {
    const { collection, session } = await collectionWithSession()

    const res = await getCollection(collection.id, "?expand=payment_sessions")

    expect(res.status).toBe(200)
    const pc = res.body.payment_collection
    expect(pc).not.toHaveProperty("region")
    expect(pc.payment_sessions.map((s: any) => s.id)).toEqual([session.id])
    expect(pc).toMatchObject({ id: collection.id, status: "not_paid", type: "order_edit" })
  })

  it("?fields=id,amount&expand=payment_sessions gives exactly those", async () => {
    const { collection, session } = await collectionWithSession(900)

    const res = await getCollection(collection.id, "?fields=id,amount&expand=payment_sessions")

    expect(res.status).toBe(200)
    const pc = res.body.payment_collection
    expect(Object.keys(pc).sort()).toEqual(["amount", "id", "payment_sessions"])
    expect(pc.payment_sessions.map((s: any) => s.id)).toEqual([session.id])
  })

  it("?expand=region.payment_providers expands nested relations", async () => {
    const collection = await createPaymentCollection({ regionId: region.id, amount: 100 })

    const res = await getCollection(collection.id, "?expand=region.payment_providers")

    expect(res.status).toBe(200)
    const pc = res.body.payment_collection
    expect(pc).not.toHaveProperty("payment_sessions")
    expect(pc.region.payment_providers.map((p: any) => p.id).sort()).toEqual(["manual", "test-pay"])
  })

  it("?fields=+authorized_amount&expand=payments shows the payment an authorization created", async () => {
    const { collection, session } = await collectionWithSession(700)
    await psp.confirmSession(session)
    const authorized = await api.post(`/store/payment-collections/${collection.id}/sessions/${session.id}/authorize`)
    expect(authorized.status).toBe(200)

    const res = await getCollection(collection.id, "?fields=%2Bauthorized_amount&expand=payments")

    expect(res.status).toBe(200)
    const pc = res.body.payment_collection
    expect(pc).toMatchObject({ id: collection.id, status: "authorized", authorized_amount: 700 })
    expect(pc.payments).toEqual([expect.objectContaining({ amount: 700, provider_id: "test-pay" })])
  })

  it("an unknown id → 404 not_found", async () => {
    const res = await getCollection("paycol_does_not_exist")
    expect(res.status).toBe(404)
    expect(res.body.type).toBe("not_found")
    expect(res.headers[PLUGIN_HEADER]).toBeDefined()
  })

  it("a soft-deleted collection → 404 not_found", async () => {
    const collection = await createPaymentCollection({ regionId: region.id, amount: 100 })
    await db.query(`UPDATE payment_collection SET deleted_at = now() WHERE id = $1`, [collection.id])

    const res = await getCollection(collection.id)

    expect(res.status).toBe(404)
    expect(res.body.type).toBe("not_found")
  })

  describe("a bad query → 400 invalid_data, never a 500 (core 1.20.11 answers 500 unknown_error to the first three)", () => {
    let collection: any

    beforeAll(async () => {
      collection = await createPaymentCollection({ regionId: region.id, amount: 100 })
    })

    it.each([
      ["an unknown relation in expand", "?expand=no_such_relation"],
      ["an unknown nested relation in expand", "?expand=region.no_such_relation"],
      ["an unknown column in fields", "?fields=id,no_such_field"],
      ["an unknown query parameter", "?limit=5"],
      ["fields given twice", "?fields=id&fields=amount"],
      ["expand as an array", "?expand[]=payment_sessions"],
    ])("%s (%s)", async (_name, query) => {
      const res = await getCollection(collection.id, query)
      expect(res.status).toBe(400)
      expect(res.body.type).toBe("invalid_data")
      expect(typeof res.body.message).toBe("string")
    })
  })
})
