import { api, createApi, HttpResponse } from "./helpers/http"
import { createPaymentCollection, createRegion, db } from "./helpers/factories"
import { psp } from "./helpers/fake-psp"
import { ExtraBackend, startExtraBackend, stopExtraBackends } from "./helpers/backend"
import {
  base,
  describeAnswer,
  holdLock,
  linkedPayments,
  linkedSessions,
  sleep,
  timed,
  waitFor,
} from "./helpers/payments"

// Work on one payment collection never holds up another collection, and a
// PostgreSQL lock conflict is an answer (409), never a crash (500).
// Timings are compared with each other, not with fixed budgets: the machine is
// shared with other test runs.

const SLOW_MS = 500
const SLOW_REQUESTS = 10
const OTHER_COLLECTIONS = 10



describe("isolation between payment collections, and PostgreSQL conflicts", () => {
  let region: any

  beforeAll(async () => {
    region = await createRegion({ providers: ["manual", "test-pay"] })
  })

  beforeEach(() => psp.reset())

  afterAll(async () => {
    await stopExtraBackends()
    await db.end()
  }, 60_000)

  it("a slow provider on collection A does not make requests on collections B..K wait for A's queue", async () => {
    const a = await createPaymentCollection({ regionId: region.id, amount: 1000 })
    const others = await Promise.all(
      Array.from({ length: OTHER_COLLECTIONS }, () => createPaymentCollection({ regionId: region.id, amount: 500 }))
    )
    await psp.behaviour({ initiatePayment: { delayMs: SLOW_MS } })

    // Every A request asks for a new test-pay session (a different split each
    // time), so each one waits SLOW_MS at the provider, one after another.
    const t0 = Date.now()
    const slow = Array.from({ length: SLOW_REQUESTS }, (_, i) =>
      timed(t0, () =>
        api.post(`${base(a.id)}/sessions/batch`, {
          sessions: [
            { provider_id: "test-pay", amount: 1000 - 10 * (i + 1) },
            { provider_id: "manual", amount: 10 * (i + 1) },
          ],
        })
      )
    )
    await waitFor("A's first request to reach the provider", async () => (await psp.state()).inflight.initiatePayment > 0)
    const fast = others.map((c) => {
      const startedAt = Date.now() - t0
      return timed(t0, () => api.post(`${base(c.id)}/sessions`, { provider_id: "manual" })).then((r) => ({
        ...r,
        latency: r.endedAt - startedAt,
      }))
    })
    const [slowDone, fastDone] = await Promise.all([Promise.all(slow), Promise.all(fast)])

    expect(slowDone.map((r) => describeAnswer(r.res))).toEqual(Array(SLOW_REQUESTS).fill("200"))
    expect(fastDone.map((r) => describeAnswer(r.res))).toEqual(Array(OTHER_COLLECTIONS).fill("200"))
    const aDrained = Math.max(...slowDone.map((r) => r.endedAt))
    const slowestOther = Math.max(...fastDone.map((r) => r.latency))
    const lastOther = Math.max(...fastDone.map((r) => r.endedAt))
    // A really was slow and serialized...
    expect(aDrained).toBeGreaterThanOrEqual(SLOW_REQUESTS * SLOW_MS)
    expect((await psp.state()).maxInflight.initiatePayment).toBe(1)
    // ...while B..K were answered long before A's queue drained.
    expect(lastOther).toBeLessThan(aDrained)
    expect(slowestOther).toBeLessThan(aDrained / 2)
    for (const [i, c] of others.entries()) {
      expect((await linkedSessions(c.id)).map((r) => r.provider_id)).toEqual(["manual"])
      expect(fastDone[i].res.body.payment_collection.id).toBe(c.id)
    }
  })

  describe("on a backend with lock_timeout_ms 1000", () => {
    let backend: ExtraBackend

    beforeAll(async () => {
      backend = await startExtraBackend({
        env: { PAYMENT_COLLECTIONS_OPTIONS: JSON.stringify({ lock_timeout_ms: 1000, reconcile_interval_ms: 500 }) },
      })
    }, 180_000)

    afterAll(() => backend.stop(), 60_000)

    it("a collection row locked longer than lock_timeout_ms → 409 conflict, nothing written; other collections unaffected; after the release the request succeeds", async () => {
      const extra = createApi(backend.url)
      const locked = await createPaymentCollection({ regionId: region.id, amount: 1000 })
      const free = await createPaymentCollection({ regionId: region.id, amount: 1000 })
      const lock = await holdLock(`SELECT id FROM payment_collection WHERE id = $1 FOR UPDATE`, [locked.id])
      let busy: HttpResponse
      let unaffected: HttpResponse
      let waited: number
      try {
        const started = Date.now()
        ;[busy, unaffected] = await Promise.all([
          extra.post(`${base(locked.id)}/sessions`, { provider_id: "manual" }).then((r) => {
            waited = Date.now() - started
            return r
          }),
          extra.post(`${base(free.id)}/sessions`, { provider_id: "manual" }),
        ])
      } finally {
        await lock.release()
      }

      expect({ status: busy.status, type: busy.body.type, code: busy.body.code }).toEqual({
        status: 409,
        type: "conflict",
        code: "invalid_state_error",
      })
      expect(waited!).toBeGreaterThanOrEqual(900)
      expect(unaffected.status).toBe(200)
      expect(await linkedSessions(locked.id)).toEqual([])

      const retry = await extra.post(`${base(locked.id)}/sessions`, { provider_id: "manual" })
      expect(retry.status).toBe(200)
      expect((await linkedSessions(locked.id)).map((r) => r.provider_id)).toEqual(["manual"])
    })

    it("requests queued behind a locked collection row all answer 409, none 500, and the next one succeeds", async () => {
      const extra = createApi(backend.url)
      const locked = await createPaymentCollection({ regionId: region.id, amount: 1000 })
      const lock = await holdLock(`SELECT id FROM payment_collection WHERE id = $1 FOR UPDATE`, [locked.id])
      let answers: HttpResponse[]
      try {
        answers = await Promise.all(
          Array.from({ length: 5 }, () => extra.post(`${base(locked.id)}/sessions`, { provider_id: "manual" }))
        )
      } finally {
        await lock.release()
      }

      expect(answers.map((r) => `${r.status} ${r.body.type}`)).toEqual(Array(5).fill("409 conflict"))
      expect(await linkedSessions(locked.id)).toEqual([])
      expect((await extra.post(`${base(locked.id)}/sessions`, { provider_id: "manual" })).status).toBe(200)
    })

    it("a payment_session row locked while authorizing → 409 conflict; the authorization the provider reported is kept, recorded once the row is free", async () => {
      const extra = createApi(backend.url)
      const collection = await createPaymentCollection({ regionId: region.id, amount: 1000 })
      const created = await extra.post(`${base(collection.id)}/sessions`, { provider_id: "test-pay" })
      expect(created.status).toBe(200)
      const session = created.body.payment_collection.payment_sessions[0]
      await psp.confirmSession(session)
      const lock = await holdLock(`SELECT id FROM payment_session WHERE id = $1 FOR UPDATE`, [session.id])
      // The lock is released after 5 × lock_timeout_ms whatever happens; the
      // answer must come before that.
      let answeredWhileLocked: boolean
      let res: HttpResponse
      try {
        const pending = extra.post(`${base(collection.id)}/sessions/${session.id}/authorize`)
        answeredWhileLocked = await Promise.race([pending.then(() => true), sleep(5000).then(() => false)])
        await lock.release()
        res = await pending
      } finally {
        await lock.release()
      }

      expect({ answeredWhileLocked, status: res.status, type: res.body.type }).toEqual({
        answeredWhileLocked: true,
        status: 409,
        type: "conflict",
      })
      // Asked once, never canceled: the reconciler records what the provider reported.
      await waitFor("the authorization to be recorded", async () => (await linkedPayments(collection.id)).length === 1)
      expect((await linkedSessions(collection.id))[0]).toMatchObject({ id: session.id, status: "authorized" })
      const state = await psp.state()
      expect(state.calls.authorizePayment).toBe(1)
      expect(state.calls.cancelPayment).toBe(0)
      expect(await psp.intent(session.data.id)).toMatchObject({ status: "authorized" })

      // A retry answers what is recorded.
      const retry = await extra.post(`${base(collection.id)}/sessions/${session.id}/authorize`)
      expect(retry.status).toBe(200)
      expect(retry.body.payment_session).toMatchObject({ id: session.id, status: "authorized" })
      expect(await linkedPayments(collection.id)).toHaveLength(1)
    })
  })
})
