import { ExtraBackend, startExtraBackend, stopExtraBackends } from "./helpers/backend"
import { Api, createApi } from "./helpers/http"
import { createPaymentCollection, createRegion, db } from "./helpers/factories"
import { psp } from "./helpers/fake-psp"
import { base, linkedSessions, waitFor, retryWhileBusy } from "./helpers/payments"

// The timeout wraps each direct call to a provider, so it fires whatever shape
// the provider has: here `test-fields`, whose methods are instance fields (a
// prototype patch would never see them), and a legacy payment service. A call
// that never answers costs provider_timeout_ms, answers 504, and frees the
// collection's lock and its database connection for the next request.

const PROVIDER_TIMEOUT_MS = 700

describe("a provider that never answers", () => {
  let backend: ExtraBackend
  let shop: Api
  let region: any

  beforeAll(async () => {
    backend = await startExtraBackend({
      env: { PAYMENT_COLLECTIONS_OPTIONS: JSON.stringify({ provider_timeout_ms: PROVIDER_TIMEOUT_MS }) },
    })
    shop = createApi(backend.url)
    region = await createRegion({ providers: ["manual", "test-fields", "test-legacy"] })
  }, 180_000)

  beforeEach(() => psp.reset())

  afterAll(async () => {
    await psp.reset()
    await stopExtraBackends()
    await db.end()
  }, 60_000)

  describe.each(["test-fields", "test-legacy"])("%s hangs", (providerId) => {
    it("at initiate: 504 after provider_timeout_ms, and the collection is free for the next request at once", async () => {
      const collection = await createPaymentCollection({ regionId: region.id, amount: 1000 })
      await psp.behaviour({ initiatePayment: { fail: "hang", provider: providerId } })

      const started = Date.now()
      const res = await shop.post(`${base(collection.id)}/sessions`, { provider_id: providerId })
      const took = Date.now() - started

      expect({ status: res.status, code: res.body.code }).toEqual({ status: 504, code: "payment_provider_timeout" })
      expect(res.body.message).toContain(providerId)
      expect(took).toBeGreaterThanOrEqual(PROVIDER_TIMEOUT_MS)

      // The lock is free: another provider's session is set without waiting for the hung call.
      const next = Date.now()
      const other = await shop.post(`${base(collection.id)}/sessions`, { provider_id: "manual" })
      expect(other.status).toBe(200)
      expect(Date.now() - next).toBeLessThan(PROVIDER_TIMEOUT_MS)
      expect((await linkedSessions(collection.id)).map((s) => s.provider_id)).toEqual(["manual"])
    })

    it("at authorize: 504, the session stays pending; the collection is served, and its session waits for the hung call", async () => {
      const collection = await createPaymentCollection({ regionId: region.id, amount: 500 })
      const created = await shop.post(`${base(collection.id)}/sessions`, { provider_id: providerId })
      expect(created.status).toBe(200)
      const session = created.body.payment_collection.payment_sessions[0]
      await psp.behaviour({ authorizePayment: { fail: "hang", provider: providerId } })

      const authorizeSent = Date.now()
      const res = await shop.post(`${base(collection.id)}/sessions/${session.id}/authorize`)

      expect({ status: res.status, code: res.body.code }).toEqual({ status: 504, code: "payment_provider_timeout" })
      expect((await linkedSessions(collection.id))[0]).toMatchObject({ id: session.id, status: "pending" })
      // The collection is not held: a read answers at once.
      const read = Date.now()
      expect((await shop.get(base(collection.id))).status).toBe(200)
      expect(Date.now() - read).toBeLessThan(PROVIDER_TIMEOUT_MS)
      // Replacing the session calls its provider while the authorize may still answer:
      // one call at a time per session, so the request waits for that answer (up to
      // provider_timeout_ms) or for the call's lease to end, then settles it by asking
      // the provider's status — never hanging, and answering 409 with Retry-After
      // while the call still belongs to its request.
      const started = Date.now()
      const first = await shop.post(`${base(collection.id)}/sessions`, { provider_id: "manual" })
      expect(Date.now() - started).toBeLessThan(PROVIDER_TIMEOUT_MS * 3)
      expect([200, 409]).toContain(first.status)
      if (first.status === 409) {
        expect(first.body.type).toBe("conflict")
        expect(Number(first.headers["retry-after"])).toBeGreaterThanOrEqual(1)
      }
      const next = await retryWhileBusy(async () => first.status === 200 ? first : await shop.post(`${base(collection.id)}/sessions`, { provider_id: "manual" }))
      expect(next.status).toBe(200)
      expect((await linkedSessions(collection.id)).map((s) => s.provider_id)).toEqual(["manual"])
      // The status was asked only once the hung call's lease (2 × provider_timeout_ms) was over.
      const [asked] = await psp.history({ resourceId: collection.id, method: "getPaymentStatus" })
      expect(asked.at).toBeGreaterThanOrEqual(authorizeSent + 2 * PROVIDER_TIMEOUT_MS)
    })
  })

  it("the hung call's journal row stays open while it may still answer, with the timeout noted", async () => {
    const collection = await createPaymentCollection({ regionId: region.id, amount: 300 })
    await psp.behaviour({ initiatePayment: { fail: "hang", provider: "test-fields" } })
    expect((await shop.post(`${base(collection.id)}/sessions`, { provider_id: "test-fields" })).status).toBe(504)

    const row = await waitFor("the timeout to be journaled", async () => {
      const { rows } = await db.query(
        `SELECT state, outcome, error_code FROM payment_collection_attempt
          WHERE payment_collection_id = $1 AND operation = 'initiate'`,
        [collection.id]
      )
      return rows[0]?.outcome === "timeout" ? rows[0] : undefined
    })
    expect(row).toEqual({ state: "started", outcome: "timeout", error_code: "payment_provider_timeout" })
  })
})
