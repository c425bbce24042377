import { adminApi, api } from "./helpers/http"
import { createPaymentCollection, createRegion, db } from "./helpers/factories"
import { psp } from "./helpers/fake-psp"
import { base } from "./helpers/payments"

// GET /admin/payment-collections/:id/attempts: every call the plugin made to a
// provider for the collection, newest first, with its outcome and latency —
// for an admin only, and never with what the provider holds (a Stripe intent
// carries its client_secret).

const FIELDS = [
  "amount",
  "created_at",
  "error_code",
  "error_message",
  "id",
  "latency_ms",
  "operation",
  "outcome",
  "provider_id",
  "request_id",
  "session_id",
  "state",
]

describe("the attempt log (GET /admin/payment-collections/:id/attempts)", () => {
  let region: any

  beforeAll(async () => {
    region = await createRegion({ providers: ["manual", "test-pay"] })
  })

  beforeEach(() => psp.reset())

  afterAll(async () => {
    await psp.reset()
    await db.end()
  })

  const log = (id: string, query = "") => adminApi.get(`/admin/payment-collections/${id}/attempts${query}`)

  it("lists every provider call of the collection, newest first, with outcome, latency and the request that made it", async () => {
    const collection = await createPaymentCollection({ regionId: region.id, amount: 1000 })
    const created = await api.post(`${base(collection.id)}/sessions`, { provider_id: "test-pay" }, { headers: { "x-request-id": "req-create" } })
    expect(created.status).toBe(200)
    await psp.behaviour({ initiatePayment: { fail: "refuse", times: 1, provider: "test-pay" } })
    const refused = await api.post(`${base(collection.id)}/sessions/batch`, {
      sessions: [
        { provider_id: "test-pay", amount: 500 },
        { provider_id: "manual", amount: 500 },
      ],
    })
    expect(refused.status).toBe(400)
    const switched = await api.post(`${base(collection.id)}/sessions`, { provider_id: "manual" }, { headers: { "x-request-id": "req-switch" } })
    expect(switched.status).toBe(200)
    const session = switched.body.payment_collection.payment_sessions[0]
    expect((await api.post(`${base(collection.id)}/sessions/${session.id}/authorize`)).status).toBe(200)

    const res = await log(collection.id)

    expect(res.status).toBe(200)
    expect(res.body).toMatchObject({ count: 8, limit: 20, offset: 0 })
    const attempts = res.body.attempts
    for (const attempt of attempts) {
      expect(Object.keys(attempt).sort()).toEqual(FIELDS)
      expect(typeof attempt.latency_ms === "number" || attempt.outcome === null).toBe(true)
    }
    const times = attempts.map((a: any) => Date.parse(a.created_at))
    expect([...times].sort((a, b) => b - a)).toEqual(times)
    expect(
      attempts
        .map((a: any) => `${a.provider_id} ${a.operation} ${a.state} ${a.outcome}`)
        .reverse()
    ).toEqual([
      "test-pay initiate committed ok",
      // Before a session is removed, its provider is asked whether the shopper confirmed it.
      "test-pay status committed ok",
      "test-pay initiate failed refused",
      "test-pay status committed ok",
      "manual initiate committed ok",
      "test-pay delete committed ok",
      "manual authorize committed ok",
      "manual retrieve committed ok",
    ])
    const refusal = attempts.find((a: any) => a.outcome === "refused")
    expect(refusal.error_message).toContain("test-pay refused")
    expect(refusal.error_code).toEqual(expect.any(String))
    expect(attempts.find((a: any) => a.operation === "initiate" && a.provider_id === "manual").request_id).toBe("req-switch")
    expect(attempts.filter((a: any) => a.request_id === "req-create").map((a: any) => a.operation)).toEqual(["initiate"])
  })

  it("never shows what a provider holds: no session or intent data, no client_secret", async () => {
    const collection = await createPaymentCollection({ regionId: region.id, amount: 400 })
    const created = await api.post(`${base(collection.id)}/sessions`, { provider_id: "test-pay" })
    const intent = await psp.intent(created.body.payment_collection.payment_sessions[0].data.id)
    expect(intent.client_secret).toEqual(expect.any(String))

    const res = await log(collection.id)

    expect(res.status).toBe(200)
    expect(res.text).not.toContain(intent.client_secret)
    expect(res.text).not.toContain("client_secret")
    expect(res.text).not.toContain("provider_data")
  })

  it("pages with limit and offset", async () => {
    const collection = await createPaymentCollection({ regionId: region.id, amount: 300 })
    for (const provider_id of ["test-pay", "manual", "test-pay"]) {
      expect((await api.post(`${base(collection.id)}/sessions`, { provider_id })).status).toBe(200)
    }
    const all = (await log(collection.id)).body
    const first = await log(collection.id, "?limit=2")
    const second = await log(collection.id, "?limit=2&offset=2")

    expect(first.body).toMatchObject({ count: all.count, limit: 2, offset: 0 })
    expect(second.body).toMatchObject({ count: all.count, limit: 2, offset: 2 })
    expect([...first.body.attempts, ...second.body.attempts].map((a: any) => a.id)).toEqual(
      all.attempts.slice(0, 4).map((a: any) => a.id)
    )
  })

  it("answers 401 without an admin session", async () => {
    const collection = await createPaymentCollection({ regionId: region.id, amount: 100 })
    const res = await api.get(`/admin/payment-collections/${collection.id}/attempts`)
    expect(res.status).toBe(401)
  })

  it("answers 404 for an unknown collection and 400 for a bad limit or offset", async () => {
    expect((await log("paycol_missing")).status).toBe(404)
    const collection = await createPaymentCollection({ regionId: region.id, amount: 100 })
    for (const query of ["?limit=0", "?limit=101", "?limit=x", "?offset=-1", "?limit=1&limit=2", "?other=1"]) {
      const res = await log(collection.id, query)
      expect({ query, status: res.status, type: res.body.type }).toEqual({ query, status: 400, type: "invalid_data" })
    }
  })
})
