import { createApi, Api } from "./helpers/http"
import { createPaymentCollection, createRegion, db } from "./helpers/factories"
import { psp } from "./helpers/fake-psp"
import { ExtraBackend, startExtraBackend, stopExtraBackends } from "./helpers/backend"
import {
  base,
  collectionRow,
  linkedPayments,
  linkedSessions,
  orphanSessions,
  parallel,
  sessionIds,
  statuses,
} from "./helpers/payments"
import { dropRunEventQueue, runEventQueueKeys } from "./helpers/redis"

// Two backend processes on one database, with the parallel requests spread
// over them. Only PostgreSQL's row lock can serialize them here. Both talk to the
// one fake PSP, as two instances of a shop talk to one Stripe account: its calls
// and intents are those of both processes. With PCP_TEST_REDIS_URL (or
// REDIS_URL) both use the Redis event bus, as a real multi-instance deployment
// does (.ci/run sets it); a machine without Redis runs them on the local bus.

const REDIS_URL = process.env.PCP_TEST_REDIS_URL || process.env.REDIS_URL
const busEnv: Record<string, string> = REDIS_URL ? { REDIS_URL } : {}
const N = 30
const DELAY_MS = 30




describe(`concurrent requests on one payment collection spread over two backend processes (${REDIS_URL ? "Redis" : "local"} event bus)`, () => {
  let region: any
  let backends: ExtraBackend[] = []
  let apis: Api[] = []

  /** Request i goes to backend i % 2. */
  const on = (i: number) => apis[i % apis.length]

  beforeAll(async () => {
    backends = await Promise.all([
      startExtraBackend({ env: busEnv }),
      startExtraBackend({ env: busEnv }),
    ])
    apis = backends.map((b) => createApi(b.url))
    region = await createRegion({ providers: ["manual", "test-pay"] })
  }, 240_000)

  beforeEach(async () => {
    await psp.reset()
  })

  afterAll(async () => {
    await stopExtraBackends()
    if (REDIS_URL) await dropRunEventQueue(REDIS_URL)
    await db.end()
  }, 60_000)

  it("both processes serve the plugin's routes (with the run's event queue in Redis when configured)", async () => {
    for (const backend of backends) {
      const res = await createApi(backend.url).get("/health")
      expect(res.status).toBe(200)
    }
    if (REDIS_URL) {
      expect((await runEventQueueKeys(REDIS_URL)).length).toBeGreaterThan(0)
    }
    const collection = await createPaymentCollection({ regionId: region.id, amount: 100 })
    for (const a of apis) {
      const res = await a.post(`${base(collection.id)}/sessions`, { provider_id: "manual" })
      expect(res.status).toBe(200)
      expect(res.headers["x-payment-collections-plugin"]).toMatch(/^medusa-plugin-payment-collections@/)
    }
  })

  it("both processes' test-pay providers call the one fake PSP", async () => {
    for (const a of apis) {
      const collection = await createPaymentCollection({ regionId: region.id, amount: 100 })
      expect((await a.post(`${base(collection.id)}/sessions`, { provider_id: "test-pay" })).status).toBe(200)
    }
    const callers = (await psp.history({ method: "initiatePayment" })).map((h) => h.pid)
    expect(callers).toEqual(backends.map((b) => b.pid))
    expect((await psp.state()).live).toHaveLength(2)
  })

  it(`${N} parallel identical "Create a Payment Session" calls over both → one session, initiated once in total, no orphans`, async () => {
    const collection = await createPaymentCollection({ regionId: region.id, amount: 3000 })
    await psp.behaviour({ initiatePayment: { delayMs: DELAY_MS } })

    const answers = await parallel(N, (i) => on(i).post(`${base(collection.id)}/sessions`, { provider_id: "test-pay" }))

    expect(statuses(answers)).toEqual(Array(N).fill("200"))
    const named = new Set(answers.flatMap((r) => sessionIds(r)))
    expect(named.size).toBe(1)
    for (const res of answers) expect(res.body.payment_collection.payment_sessions).toHaveLength(1)

    const rows = await linkedSessions(collection.id)
    expect(rows).toHaveLength(1)
    expect(rows[0]).toMatchObject({ id: [...named][0], provider_id: "test-pay", amount: 3000 })
    expect(await orphanSessions()).toEqual([])
    const state = await psp.state()
    expect(state.calls.initiatePayment).toBe(1)
    expect(state.live.map((i) => i.id)).toEqual([rows[0].data.id])
  })

  it(`${N} parallel authorizations of one session over both → all 200 alike, authorized once in total, one payment`, async () => {
    const collection = await createPaymentCollection({ regionId: region.id, amount: 2500 })
    const created = await apis[0].post(`${base(collection.id)}/sessions`, { provider_id: "test-pay" })
    expect(created.status).toBe(200)
    const sessionId = created.body.payment_collection.payment_sessions[0].id
    await psp.confirmSession(created.body.payment_collection.payment_sessions[0])
    await psp.behaviour({ authorizePayment: { delayMs: DELAY_MS }, retrievePayment: { delayMs: DELAY_MS } })

    const answers = await parallel(N, (i) => on(i).post(`${base(collection.id)}/sessions/${sessionId}/authorize`))

    expect(statuses(answers)).toEqual(Array(N).fill("200"))
    for (const res of answers) expect(res.body.payment_session).toEqual(answers[0].body.payment_session)
    expect(answers[0].body.payment_session).toMatchObject({ id: sessionId, status: "authorized", amount: 2500 })
    const state = await psp.state()
    expect(state.calls.authorizePayment).toBe(1)
    expect(state.intents).toEqual([expect.objectContaining({ status: "authorized", amount: 2500 })])

    const payments = await linkedPayments(collection.id)
    expect(payments).toHaveLength(1)
    expect(payments[0]).toMatchObject({ provider_id: "test-pay", amount: 2500 })
    expect(await collectionRow(collection.id)).toMatchObject({ status: "authorized", authorized_amount: 2500 })
  })

  it(`${N} parallel identical batch calls without session ids over both end with one set of sessions, the replaced ones deleted at the provider`, async () => {
    const collection = await createPaymentCollection({ regionId: region.id, amount: 1000 })
    await psp.behaviour({ initiatePayment: { delayMs: DELAY_MS }, deletePayment: { delayMs: DELAY_MS } })
    const body = {
      sessions: [
        { provider_id: "test-pay", amount: 600 },
        { provider_id: "manual", amount: 400 },
      ],
    }

    const answers = await parallel(N, (i) => on(i).post(`${base(collection.id)}/sessions/batch`, body))

    expect(statuses(answers)).toEqual(Array(N).fill("200"))
    const rows = await linkedSessions(collection.id)
    expect(rows.map((r) => `${r.provider_id}:${r.amount}`).sort()).toEqual(["manual:400", "test-pay:600"])
    const finalIds = JSON.stringify(rows.map((r) => r.id).sort())
    expect(answers.some((res) => JSON.stringify(sessionIds(res)) === finalIds)).toBe(true)
    expect(await orphanSessions()).toEqual([])
    const state = await psp.state()
    const testPayRow = rows.find((r) => r.provider_id === "test-pay")
    expect(state.live.map((i) => i.id)).toEqual([testPayRow.data.id])
    expect(state.calls.initiatePayment - state.calls.deletePayment).toBe(1)
  })

  it(`${N} parallel identical batch calls naming the sessions over both → one update in total, every answer names the same sessions`, async () => {
    const collection = await createPaymentCollection({ regionId: region.id, amount: 1000 })
    const first = await apis[1].post(`${base(collection.id)}/sessions/batch`, {
      sessions: [
        { provider_id: "test-pay", amount: 600 },
        { provider_id: "manual", amount: 400 },
      ],
    })
    expect(first.status).toBe(200)
    const byProvider = Object.fromEntries(
      (first.body.payment_collection.payment_sessions as any[]).map((s) => [s.provider_id, s.id])
    )
    const before = await psp.state()
    await psp.behaviour({ updatePayment: { delayMs: DELAY_MS } })
    const body = {
      sessions: [
        { provider_id: "test-pay", amount: 700, session_id: byProvider["test-pay"] },
        { provider_id: "manual", amount: 300, session_id: byProvider.manual },
      ],
    }

    const answers = await parallel(N, (i) => on(i).post(`${base(collection.id)}/sessions/batch`, body))

    expect(statuses(answers)).toEqual(Array(N).fill("200"))
    const expectedIds = [byProvider["test-pay"], byProvider.manual].sort()
    for (const res of answers) expect(sessionIds(res)).toEqual(expectedIds)
    const rows = await linkedSessions(collection.id)
    expect(Object.fromEntries(rows.map((r) => [r.id, r.amount]))).toEqual({
      [byProvider["test-pay"]]: 700,
      [byProvider.manual]: 300,
    })
    const after = await psp.state()
    expect(after.calls.updatePayment - before.calls.updatePayment).toBe(1)
    expect(after.calls.initiatePayment - before.calls.initiatePayment).toBe(0)
    expect(after.calls.deletePayment - before.calls.deletePayment).toBe(0)
    const testPayRow = rows.find((r) => r.provider_id === "test-pay")
    expect(after.live).toEqual([expect.objectContaining({ id: testPayRow.data.id, amount: 700 })])
  })

  it(`${N} parallel identical batch authorizations over both → each provider authorizes once, one payment per session`, async () => {
    const collection = await createPaymentCollection({ regionId: region.id, amount: 1000 })
    const created = await apis[0].post(`${base(collection.id)}/sessions/batch`, {
      sessions: [
        { provider_id: "test-pay", amount: 700 },
        { provider_id: "manual", amount: 300 },
      ],
    })
    expect(created.status).toBe(200)
    const ids = sessionIds(created)
    await psp.confirmSession(created.body.payment_collection.payment_sessions.find((s: any) => s.provider_id === "test-pay"))
    await psp.behaviour({ authorizePayment: { delayMs: DELAY_MS }, retrievePayment: { delayMs: DELAY_MS } })

    const answers = await parallel(N, (i) =>
      on(i).post(`${base(collection.id)}/sessions/batch/authorize`, { session_ids: ids })
    )

    expect(statuses(answers)).toEqual(Array(N).fill("200"))
    for (const res of answers) {
      expect(res.body.payment_collection).toMatchObject({ status: "authorized", authorized_amount: 1000 })
      expect(sessionIds(res)).toEqual(ids)
    }
    const state = await psp.state()
    expect(state.calls.authorizePayment).toBe(1)
    expect(state.intents).toEqual([expect.objectContaining({ status: "authorized", amount: 700 })])
    const payments = await linkedPayments(collection.id)
    expect(payments.map((p) => `${p.provider_id}:${p.amount}`).sort()).toEqual(["manual:300", "test-pay:700"])
    expect(await collectionRow(collection.id)).toMatchObject({ status: "authorized", authorized_amount: 1000 })
    expect((await linkedSessions(collection.id)).map((r) => r.status)).toEqual(["authorized", "authorized"])
  })

  it(`${N} parallel "Create a Payment Session" calls alternating two providers over both end consistent`, async () => {
    const collection = await createPaymentCollection({ regionId: region.id, amount: 1800 })
    await psp.behaviour({ initiatePayment: { delayMs: DELAY_MS }, deletePayment: { delayMs: DELAY_MS } })
    // backend i % 2, provider (i >> 1) % 2: each backend gets both providers.
    const providerOf = (i: number) => (((i >> 1) & 1) === 0 ? "test-pay" : "manual")

    const answers = await parallel(N, (i) =>
      on(i).post(`${base(collection.id)}/sessions`, { provider_id: providerOf(i) })
    )

    expect(statuses(answers)).toEqual(Array(N).fill("200"))
    answers.forEach((res, i) => {
      const sessions = res.body.payment_collection.payment_sessions as any[]
      expect(sessions).toHaveLength(1)
      expect(sessions[0]).toMatchObject({ provider_id: providerOf(i), amount: 1800 })
    })
    const rows = await linkedSessions(collection.id)
    expect(rows).toHaveLength(1)
    expect(await orphanSessions()).toEqual([])
    const state = await psp.state()
    const expected = rows[0].provider_id === "test-pay" ? [rows[0].data.id] : []
    expect(state.live.map((i) => i.id)).toEqual(expected)
    expect(state.calls.initiatePayment - state.calls.deletePayment).toBe(expected.length)
  })
})
