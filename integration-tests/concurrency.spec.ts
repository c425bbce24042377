import { api } from "./helpers/http"
import { createPaymentCollection, createRegion, db } from "./helpers/factories"
import { psp } from "./helpers/fake-psp"
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

// N parallel requests on ONE payment collection, on one backend process: the
// plugin serializes them (in-process queue + row lock), so the outcome is that
// of the requests run one after another and the provider is called only as
// often as that needs. A small delay at the fake PSP widens the race windows.

const N = 30
const DELAY_MS = 30




describe("concurrent requests on one payment collection (one backend)", () => {
  let region: any

  beforeAll(async () => {
    region = await createRegion({ providers: ["manual", "test-pay"] })
  })

  beforeEach(() => psp.reset())

  afterAll(() => db.end())

  it(`${N} parallel identical "Create a Payment Session" calls → one session, initiated once, no orphans`, async () => {
    const collection = await createPaymentCollection({ regionId: region.id, amount: 3000 })
    await psp.behaviour({ initiatePayment: { delayMs: DELAY_MS } })

    const answers = await parallel(N, () =>
      api.post(`${base(collection.id)}/sessions`, { provider_id: "test-pay" })
    )

    expect(statuses(answers)).toEqual(Array(N).fill("200"))
    for (const res of answers) {
      expect(res.body.payment_collection.payment_sessions).toHaveLength(1)
    }
    const named = new Set(answers.map((r) => r.body.payment_collection.payment_sessions[0].id))
    expect(named.size).toBe(1)

    const rows = await linkedSessions(collection.id)
    expect(rows).toHaveLength(1)
    expect(rows[0]).toMatchObject({ id: [...named][0], provider_id: "test-pay", amount: 3000, status: "pending" })
    expect(await orphanSessions()).toEqual([])

    const state = await psp.state()
    expect(state.calls.initiatePayment).toBe(1)
    expect(state.calls.updatePayment).toBe(0)
    expect(state.intents.map((i) => i.id)).toEqual([rows[0].data.id])
  })

  it(`${N} parallel authorizations of one session → all 200 alike, authorized once, one payment`, async () => {
    const collection = await createPaymentCollection({ regionId: region.id, amount: 2500 })
    const created = await api.post(`${base(collection.id)}/sessions`, { provider_id: "test-pay" })
    expect(created.status).toBe(200)
    const sessionId = created.body.payment_collection.payment_sessions[0].id
    await psp.confirmSession(created.body.payment_collection.payment_sessions[0])
    await psp.behaviour({ authorizePayment: { delayMs: DELAY_MS }, retrievePayment: { delayMs: DELAY_MS } })

    const answers = await parallel(N, () => api.post(`${base(collection.id)}/sessions/${sessionId}/authorize`))

    expect(statuses(answers)).toEqual(Array(N).fill("200"))
    for (const res of answers) {
      expect(res.body.payment_session).toEqual(answers[0].body.payment_session)
    }
    expect(answers[0].body.payment_session).toMatchObject({ id: sessionId, status: "authorized", amount: 2500 })

    const state = await psp.state()
    expect(state.calls.authorizePayment).toBe(1)
    expect(state.intents).toEqual([expect.objectContaining({ status: "authorized", amount: 2500 })])

    const payments = await linkedPayments(collection.id)
    expect(payments).toHaveLength(1)
    expect(payments[0]).toMatchObject({ provider_id: "test-pay", amount: 2500, currency_code: "usd" })
    expect(await collectionRow(collection.id)).toMatchObject({ status: "authorized", authorized_amount: 2500 })
    const [session] = await linkedSessions(collection.id)
    expect(session).toMatchObject({ id: sessionId, status: "authorized" })
    expect(session.payment_authorized_at).not.toBeNull()
  })

  it(`${N} parallel identical batch calls without session ids → one set of sessions, each initiated once, nothing replaced`, async () => {
    // An unlisted session of the same provider and amount is reused, so every
    // call after the first finds the batch already in place.
    const collection = await createPaymentCollection({ regionId: region.id, amount: 1000 })
    await psp.behaviour({ initiatePayment: { delayMs: DELAY_MS }, deletePayment: { delayMs: DELAY_MS } })
    const body = {
      sessions: [
        { provider_id: "test-pay", amount: 600 },
        { provider_id: "manual", amount: 400 },
      ],
    }

    const answers = await parallel(N, () => api.post(`${base(collection.id)}/sessions/batch`, body))

    expect(statuses(answers)).toEqual(Array(N).fill("200"))
    const rows = await linkedSessions(collection.id)
    expect(rows.map((r) => `${r.provider_id}:${r.amount}`).sort()).toEqual(["manual:400", "test-pay:600"])
    const finalIds = rows.map((r) => r.id).sort()
    for (const res of answers) {
      expect(sessionIds(res)).toEqual(finalIds)
    }
    expect(await orphanSessions()).toEqual([])

    const state = await psp.state()
    const testPayRow = rows.find((r) => r.provider_id === "test-pay")
    expect(state.intents.map((i) => i.id)).toEqual([testPayRow.data.id])
    expect(state.calls.initiatePayment).toBe(1)
    expect(state.calls.deletePayment).toBe(0)
  })

  it(`${N} parallel identical batch calls naming the sessions → one update per session, every answer names the same sessions`, async () => {
    const collection = await createPaymentCollection({ regionId: region.id, amount: 1000 })
    const first = await api.post(`${base(collection.id)}/sessions/batch`, {
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

    const answers = await parallel(N, () => api.post(`${base(collection.id)}/sessions/batch`, body))

    expect(statuses(answers)).toEqual(Array(N).fill("200"))
    const expectedIds = [byProvider["test-pay"], byProvider.manual].sort()
    for (const res of answers) {
      expect(sessionIds(res)).toEqual(expectedIds)
    }
    const rows = await linkedSessions(collection.id)
    expect(Object.fromEntries(rows.map((r) => [r.id, r.amount]))).toEqual({
      [byProvider["test-pay"]]: 700,
      [byProvider.manual]: 300,
    })
    expect(await orphanSessions()).toEqual([])
    const state = await psp.state()
    expect(state.calls.updatePayment - before.calls.updatePayment).toBe(1)
    expect(state.calls.initiatePayment - before.calls.initiatePayment).toBe(0)
    expect(state.calls.deletePayment - before.calls.deletePayment).toBe(0)
    const testPayRow = rows.find((r) => r.provider_id === "test-pay")
    expect(state.intents).toEqual([expect.objectContaining({ id: testPayRow.data.id, amount: 700 })])
  })

  it(`${N} parallel identical batch authorizations → each provider authorizes once, one payment per session`, async () => {
    const collection = await createPaymentCollection({ regionId: region.id, amount: 1000 })
    const created = await api.post(`${base(collection.id)}/sessions/batch`, {
      sessions: [
        { provider_id: "test-pay", amount: 700 },
        { provider_id: "manual", amount: 300 },
      ],
    })
    expect(created.status).toBe(200)
    const ids = sessionIds(created)
    await psp.confirmSession(created.body.payment_collection.payment_sessions.find((s: any) => s.provider_id === "test-pay"))
    await psp.behaviour({ authorizePayment: { delayMs: DELAY_MS }, retrievePayment: { delayMs: DELAY_MS } })

    const answers = await parallel(N, () =>
      api.post(`${base(collection.id)}/sessions/batch/authorize`, { session_ids: ids })
    )

    expect(statuses(answers)).toEqual(Array(N).fill("200"))
    for (const res of answers) {
      expect(res.body.payment_collection).toMatchObject({ status: "authorized", authorized_amount: 1000 })
      expect(sessionIds(res)).toEqual(ids)
      for (const s of res.body.payment_collection.payment_sessions) expect(s.status).toBe("authorized")
    }
    const state = await psp.state()
    expect(state.calls.authorizePayment).toBe(1)
    expect(state.intents).toEqual([expect.objectContaining({ status: "authorized", amount: 700 })])

    const payments = await linkedPayments(collection.id)
    expect(payments.map((p) => `${p.provider_id}:${p.amount}`).sort()).toEqual(["manual:300", "test-pay:700"])
    expect(await collectionRow(collection.id)).toMatchObject({ status: "authorized", authorized_amount: 1000 })
    const rows = await linkedSessions(collection.id)
    expect(rows.map((r) => r.status)).toEqual(["authorized", "authorized"])
  })

  it(`${N} parallel "Create a Payment Session" calls alternating two providers end consistent: one session, the provider's live intents match it`, async () => {
    const collection = await createPaymentCollection({ regionId: region.id, amount: 1800 })
    await psp.behaviour({ initiatePayment: { delayMs: DELAY_MS }, deletePayment: { delayMs: DELAY_MS } })
    const providerOf = (i: number) => (i % 2 === 0 ? "test-pay" : "manual")

    const answers = await parallel(N, (i) =>
      api.post(`${base(collection.id)}/sessions`, { provider_id: providerOf(i) })
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
    const expectedIntents = rows[0].provider_id === "test-pay" ? [rows[0].data.id] : []
    expect(state.live.map((i) => i.id)).toEqual(expectedIntents)
    expect(state.calls.initiatePayment - state.calls.deletePayment).toBe(expectedIntents.length)
    expect(state.maxInflight.initiatePayment).toBe(1)
    expect(state.maxInflight.deletePayment).toBe(1)
  })
})
