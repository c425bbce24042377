import { adminApi, adminHeaders, api } from "./helpers/http"
import { db, entityId, freeCountry } from "./helpers/factories"
import { psp } from "./helpers/fake-psp"
import { expectMedusaError } from "./helpers/collection-state"
import { orderEditSeed, Shop } from "./helpers/order-edit-seed"
import { testEnv } from "./helpers/env"

// GET /admin/orders/:id/payment-collections: what the admin's order widget
// shows about the payment collections of an order's edits. Orders are placed
// and edited through Medusa's own APIs and paid through the plugin.

const ordersPath = (orderId: string) => `/admin/orders/${orderId}/payment-collections`
const attemptsPath = (collectionId: string) => `/admin/payment-collections/${collectionId}/attempts`

const SESSION_KEYS = ["amount", "created_at", "id", "payment_authorized_at", "provider_id", "status"]
const PAYMENT_KEYS = [
  "amount",
  "amount_refunded",
  "canceled_at",
  "captured_at",
  "created_at",
  "currency_code",
  "id",
  "provider_id",
]

/** Journal rows as the lead's writer stores them, for the read side's paging. */
async function insertAttempts(collectionId: string, n: number): Promise<string[]> {
  const ids: string[] = []
  for (let i = 0; i < n; i++) {
    const id = entityId("pcatt")
    ids.push(id)
    await db.query(
      `INSERT INTO payment_collection_attempt
         (id, payment_collection_id, provider_id, operation, state, outcome, error_code, error_message,
          amount, currency_code, provider_data, process, lease_until, created_at, latency_ms)
       VALUES ($1, $2, 'test-pay', 'initiate', 'failed', 'refused', 'refused', $3, 100, 'usd',
               '{"client_secret":"pi_secret_never_shown"}', 'spec', now(), now() - ($4 || ' seconds')::interval, 5)`,
      [id, collectionId, `refusal ${i}`, String(n - i)]
    )
  }
  return ids.reverse() // newest first
}

describe("Admin API: the payment collections of an order's edits", () => {
  let shop: Shop
  const url = () => testEnv().backendUrl

  beforeAll(async () => {
    shop = await orderEditSeed.createShop(url(), { adminHeaders: adminHeaders(), countryCode: await freeCountry() })
  })

  beforeEach(() => psp.reset())

  afterAll(() => db.end())

  describe("without an admin", () => {
    it.each([
      ["no token", {}],
      ["a wrong token", { "x-medusa-access-token": "pcp_not_the_admin_token" }],
      ["a wrong bearer token", { authorization: "Bearer pcp_not_a_jwt" }],
    ])("GET an order's payment collections with %s → 401", async (_name, headers) => {
      const order = await orderEditSeed.placeOrder(url(), shop)
      const res = await api.get(ordersPath(order.id), { headers })
      expect(res.status).toBe(401)
      expect(res.body).not.toHaveProperty("payment_collections")
    })

    it("GET a collection's attempt log without a token → 401", async () => {
      const order = await orderEditSeed.placeOrder(url(), shop)
      const edit = await orderEditSeed.requestOrderEdit(url(), shop, order.id, { adminHeaders: adminHeaders() })
      const res = await api.get(attemptsPath(edit.payment_collection_id))
      expect(res.status).toBe(401)
      expect(res.body).not.toHaveProperty("attempts")
    })
  })

  it.each([
    ["an unknown order", "order_does_not_exist"],
    ["an id with a NUL byte", "order_%00"],
    ["an id over 255 characters", "o".repeat(300)],
  ])("%s → 404 not_found", async (_name, id) => {
    expectMedusaError(await adminApi.get(ordersPath(id)), 404, "not_found")
  })

  it("an order without edits has no payment collections", async () => {
    const order = await orderEditSeed.placeOrder(url(), shop)

    const res = await adminApi.get(ordersPath(order.id))

    expect(res.status).toBe(200)
    expect(res.body).toEqual({ payment_collections: [] })
  })

  it("a requested edit shows its unpaid collection: amount due, no sessions, no payments", async () => {
    const order = await orderEditSeed.placeOrder(url(), shop)
    const edit = await orderEditSeed.requestOrderEdit(url(), shop, order.id, {
      adminHeaders: adminHeaders(),
      description: "Two more mugs",
    })

    const res = await adminApi.get(ordersPath(order.id))

    expect(res.status).toBe(200)
    expect(res.body.payment_collections).toEqual([
      {
        id: edit.payment_collection_id,
        status: "not_paid",
        amount: 4000,
        authorized_amount: null,
        currency_code: "usd",
        description: "Two more mugs",
        created_at: expect.any(String),
        order_edit: { id: edit.id, status: "requested" },
        payment_sessions: [],
        payments: [],
        needs_attention: 0,
        attempts: { attempts: [], count: 0, limit: 10, offset: 0 },
      },
    ])
  })

  it("an edit paid through manual and test-pay shows both sessions and both payments, and nothing of the providers' data", async () => {
    const { order, orderEdit, collection } = await orderEditSeed.seedOrderWithPaidEdit(url(), shop, { pspUrl: testEnv().pspUrl,
      adminHeaders: adminHeaders(),
    })
    // What a Stripe intent carries and an admin page must never show.
    const secret = `pi_${entityId("x")}_secret_${Date.now()}`
    await db.query(
      `UPDATE payment_session SET data = data || jsonb_build_object('client_secret', $2::text)
        WHERE id IN (SELECT payment_session_id FROM payment_collection_sessions WHERE payment_collection_id = $1)`,
      [collection.id, secret]
    )
    await db.query(
      `UPDATE payment SET data = data || jsonb_build_object('client_secret', $2::text)
        WHERE id IN (SELECT payment_id FROM payment_collection_payments WHERE payment_collection_id = $1)`,
      [collection.id, secret]
    )

    const res = await adminApi.get(ordersPath(order.id))

    expect(res.status).toBe(200)
    expect(res.body.payment_collections).toHaveLength(1)
    const shown = res.body.payment_collections[0]
    expect(shown).toMatchObject({
      id: collection.id,
      status: "authorized",
      amount: 4000,
      authorized_amount: 4000,
      currency_code: "usd",
      order_edit: { id: orderEdit.id, status: "confirmed" },
    })
    // The batch made both sessions (and then both payments) in one statement:
    // one created_at, so their order, as in core, is that of their random ids.
    const byProvider = (a: { provider_id: string }, b: { provider_id: string }) => a.provider_id.localeCompare(b.provider_id)
    expect([...shown.payment_sessions].sort(byProvider)).toEqual([
      expect.objectContaining({ provider_id: "manual", amount: 1500, status: "authorized" }),
      expect.objectContaining({ provider_id: "test-pay", amount: 2500, status: "authorized" }),
    ])
    expect([...shown.payments].sort(byProvider)).toEqual([
      expect.objectContaining({ provider_id: "manual", amount: 1500, currency_code: "usd", amount_refunded: 0 }),
      expect.objectContaining({ provider_id: "test-pay", amount: 2500, currency_code: "usd", amount_refunded: 0 }),
    ])
    for (const session of shown.payment_sessions) expect(Object.keys(session).sort()).toEqual(SESSION_KEYS)
    for (const payment of shown.payments) expect(Object.keys(payment).sort()).toEqual(PAYMENT_KEYS)
    expect(res.text).not.toContain(secret)
    expect(res.text).not.toContain("client_secret")
  })

  it("the attempt log lists the provider calls that paid the edit, newest first, as the attempts route does", async () => {
    const { order, collection } = await orderEditSeed.seedOrderWithPaidEdit(url(), shop, { pspUrl: testEnv().pspUrl,
      adminHeaders: adminHeaders(),
    })

    const res = await adminApi.get(ordersPath(order.id))

    expect(res.status).toBe(200)
    const { attempts } = res.body.payment_collections[0]
    const calls = attempts.attempts.map((a: any) => `${a.provider_id} ${a.operation} ${a.outcome}`)
    expect(calls).toEqual(
      expect.arrayContaining([
        "manual initiate ok",
        "test-pay initiate ok",
        "manual authorize ok",
        "test-pay authorize ok",
      ])
    )
    const times = attempts.attempts.map((a: any) => Date.parse(a.created_at))
    expect(times).toEqual([...times].sort((a, b) => b - a))
    for (const attempt of attempts.attempts) {
      expect(attempt.latency_ms).toEqual(expect.any(Number))
      expect(attempt).not.toHaveProperty("provider_data")
    }
    const direct = await adminApi.get(`${attemptsPath(collection.id)}?limit=10&offset=0`)
    expect(direct.status).toBe(200)
    expect(direct.body).toEqual(attempts)
  })

  it("the attempt log comes 10 at a time: the first page inline, later pages from the attempts route", async () => {
    const order = await orderEditSeed.placeOrder(url(), shop)
    const edit = await orderEditSeed.requestOrderEdit(url(), shop, order.id, { adminHeaders: adminHeaders() })
    const newestFirst = await insertAttempts(edit.payment_collection_id, 23)

    const res = await adminApi.get(ordersPath(order.id))
    const second = await adminApi.get(`${attemptsPath(edit.payment_collection_id)}?limit=10&offset=10`)
    const third = await adminApi.get(`${attemptsPath(edit.payment_collection_id)}?limit=10&offset=20`)

    expect(res.status).toBe(200)
    const inline = res.body.payment_collections[0].attempts
    expect(inline).toMatchObject({ count: 23, limit: 10, offset: 0 })
    expect(inline.attempts.map((a: any) => a.id)).toEqual(newestFirst.slice(0, 10))
    expect(second.body.attempts.map((a: any) => a.id)).toEqual(newestFirst.slice(10, 20))
    expect(third.body.attempts.map((a: any) => a.id)).toEqual(newestFirst.slice(20))
    expect(inline.attempts[0]).toMatchObject({
      provider_id: "test-pay",
      operation: "initiate",
      outcome: "refused",
      error_code: "refused",
      error_message: "refusal 22",
      latency_ms: 5,
    })
    expect(res.text + second.text + third.text).not.toContain("pi_secret_never_shown")
  })
})
