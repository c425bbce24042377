import { Api, createApi, HttpResponse } from "./helpers/http"
import { createPaymentCollection, createRegion, db } from "./helpers/factories"
import { psp, PspOperation } from "./helpers/fake-psp"
import { attemptRows, waitForSettledJournal } from "./helpers/journal"
import { ExtraBackend, startExtraBackend, stopExtraBackends } from "./helpers/backend"
import {
  collectionRow,
  installFailingTrigger,
  linkedPayments,
  linkedSessions,
  orphanSessions,
  retryWhileBusy,
  sleep,
  waitFor,
} from "./helpers/payments"

// A payment provider that refuses, crashes or does not answer, at each step,
// and a database write that fails after the provider already acted. Runs on a
// backend with provider_timeout_ms 1500 so that a hang costs 1.5 s.

const PROVIDER_TIMEOUT_MS = 1500

type Fault = "refuse" | "throw" | "hang"
const FAULTS: Fault[] = ["refuse", "throw", "hang"]
/** What the journal records as a call's outcome for each fault. */
const FAULT_OUTCOME: Record<Fault, string> = { refuse: "refused", throw: "error", hang: "timeout" }

const base = (id: string) => `/store/payment-collections/${id}`

/** What the client must get for a fault in a session change (create, update, delete). */
function expectFaultAnswer(res: HttpResponse, fault: Fault, method: PspOperation) {
  if (fault === "refuse") {
    expect(res.status).toBe(400)
    expect(res.body.type).toBe("invalid_data")
    expect(res.body.message).toContain(`test-pay refused ${method}`)
  } else {
    expectUnavailable(res, fault)
  }
}

function expectUnavailable(res: HttpResponse, fault: "throw" | "hang") {
  expect({ status: res.status, type: res.body.type, code: res.body.code }).toEqual(
    fault === "throw"
      ? { status: 502, type: "unexpected_state", code: "payment_provider_error" }
      : { status: 504, type: "unexpected_state", code: "payment_provider_timeout" }
  )
  expect(res.body.message).toContain("test-pay")
}

/** A failed database write answers Medusa's generic 500 (never a provider status). */
function expectDatabaseFailure(res: HttpResponse) {
  expect(res.status).toBe(500)
  expect(["unknown_error", "database_error"]).toContain(res.body.type)
}

describe("payment provider faults and failed database writes", () => {
  let region: any
  let backend: ExtraBackend
  let api: Api

  beforeAll(async () => {
    backend = await startExtraBackend({
      env: {
        PAYMENT_COLLECTIONS_OPTIONS: JSON.stringify({ provider_timeout_ms: PROVIDER_TIMEOUT_MS, reconcile_interval_ms: 500, finder_settle_ms: 1000 }),
      },
    })
    api = createApi(backend.url)
    region = await createRegion({ providers: ["manual", "test-pay"] })
  }, 180_000)

  beforeEach(() => psp.reset())

  afterEach(async () => {
    // Whatever happened, no session row is left without its collection.
    expect(await orphanSessions()).toEqual([])
  })

  afterAll(async () => {
    await stopExtraBackends()
    await db.end()
  }, 60_000)

  async function createTestPaySession(collectionId: string) {
    const res = await api.post(`${base(collectionId)}/sessions`, { provider_id: "test-pay" })
    expect(res.status).toBe(200)
    return res.body.payment_collection.payment_sessions[0]
  }

  describe.each(FAULTS)("the provider fails with %s", (fault) => {
    it("at initiate: a clear error, nothing written, no intent; a retry succeeds", async () => {
      const collection = await createPaymentCollection({ regionId: region.id, amount: 1200 })
      await psp.behaviour({ initiatePayment: { fail: fault } })

      const res = await api.post(`${base(collection.id)}/sessions`, { provider_id: "test-pay" })

      expectFaultAnswer(res, fault, "initiatePayment")
      expect(await linkedSessions(collection.id)).toEqual([])
      expect((await psp.state()).intents).toEqual([])
      expect(await collectionRow(collection.id)).toMatchObject({ status: "not_paid" })

      await psp.behaviour({ initiatePayment: null })
      const retry = await api.post(`${base(collection.id)}/sessions`, { provider_id: "test-pay" })
      expect(retry.status).toBe(200)
      const rows = await linkedSessions(collection.id)
      expect(rows).toHaveLength(1)
      expect(retry.body.payment_collection.payment_sessions.map((s: any) => s.id)).toEqual([rows[0].id])
      expect((await psp.state()).intents.map((i) => i.id)).toEqual([rows[0].data.id])
    })

    it("at update (batch changes the amounts): the sessions stay as they were, the new one is not kept; a retry succeeds", async () => {
      const collection = await createPaymentCollection({ regionId: region.id, amount: 1000 })
      const session = await createTestPaySession(collection.id)
      await psp.behaviour({ updatePayment: { fail: fault } })
      const body = {
        sessions: [
          { provider_id: "test-pay", amount: 700, session_id: session.id },
          { provider_id: "manual", amount: 300 },
        ],
      }

      const res = await api.post(`${base(collection.id)}/sessions/batch`, body)

      expectFaultAnswer(res, fault, "updatePayment")
      const rows = await linkedSessions(collection.id)
      expect(rows.map((r) => `${r.id}:${r.provider_id}:${r.amount}`)).toEqual([`${session.id}:test-pay:1000`])
      expect((await psp.state()).intents).toEqual([expect.objectContaining({ id: session.data.id, amount: 1000 })])

      // A hung update may still answer: a retry waits for it or its lease (409 with Retry-After).
      await psp.behaviour({ updatePayment: null })
      const retry = await retryWhileBusy(() => api.post(`${base(collection.id)}/sessions/batch`, body))
      expect(retry.status).toBe(200)
      const after = await linkedSessions(collection.id)
      expect(after.map((r) => `${r.provider_id}:${r.amount}`).sort()).toEqual(["manual:300", "test-pay:700"])
      expect(after.find((r) => r.provider_id === "test-pay").id).toBe(session.id)
      expect((await psp.state()).intents).toEqual([expect.objectContaining({ id: session.data.id, amount: 700 })])
    })

    it("at authorize: a clear error; what the provider holds is recorded, never more; a retry answers the authorization", async () => {
      const collection = await createPaymentCollection({ regionId: region.id, amount: 900 })
      const session = await createTestPaySession(collection.id)
      await psp.confirmSession(session)
      await psp.behaviour({ authorizePayment: { fail: fault } })

      const res = await api.post(`${base(collection.id)}/sessions/${session.id}/authorize`)

      if (fault === "refuse") {
        // A refusal is an answer about the payment: the session is marked so.
        expect(res.status).toBe(422)
        expect(res.body.type).toBe("payment_authorization_error")
        expect((await linkedSessions(collection.id))[0]).toMatchObject({ id: session.id, status: "error" })
        expect(await collectionRow(collection.id)).toMatchObject({ status: "awaiting", authorized_amount: 0 })
        expect(await linkedPayments(collection.id)).toEqual([])
      } else if (fault === "throw") {
        // A crash may follow an effect: before answering, the request asked the
        // provider's status, found the shopper's confirmation and recorded it.
        expectUnavailable(res, fault)
        expect((await linkedSessions(collection.id))[0]).toMatchObject({ id: session.id, status: "authorized" })
        expect(await linkedPayments(collection.id)).toHaveLength(1)
        expect(await collectionRow(collection.id)).toMatchObject({ status: "authorized", authorized_amount: 900 })
      } else {
        // Still in flight: one call at a time on a session, so a retry waits for its
        // answer, then answers 409 with Retry-After instead of calling the provider again.
        expectUnavailable(res, fault)
        expect((await linkedSessions(collection.id))[0]).toMatchObject({ id: session.id, status: "pending" })
        expect(await linkedPayments(collection.id)).toEqual([])
        // It waits up to provider_timeout_ms: 409 while the hung call's lease holds, or, once the
        // lease is over, the call settled by asking the provider's status (a race on a loaded machine).
        const early = await api.post(`${base(collection.id)}/sessions/${session.id}/authorize`)
        expect([200, 409]).toContain(early.status)
        if (early.status === 409) {
          expect(early.body.type).toBe("conflict")
          expect(Number(early.headers["retry-after"])).toBeGreaterThanOrEqual(1)
        }
        expect(await psp.history({ intentId: session.data.id, method: "authorizePayment" })).toHaveLength(1)
      }
      // The shopper's confirmation stands: a failed read of it changes nothing at the provider.
      expect((await psp.state()).intents).toEqual([expect.objectContaining({ id: session.data.id, status: "authorized" })])

      // Once the hung call's lease is over, a request settles it by asking the status.
      await psp.behaviour({ authorizePayment: null })
      const retry = await retryWhileBusy(() => api.post(`${base(collection.id)}/sessions/${session.id}/authorize`))
      expect(retry.status).toBe(200)
      expect(retry.body.payment_session).toMatchObject({ id: session.id, status: "authorized" })
      expect(await linkedPayments(collection.id)).toHaveLength(1)
      expect(await collectionRow(collection.id)).toMatchObject({ status: "authorized", authorized_amount: 900 })
    })

    it("at delete (switching provider): the switch is made, and the old provider session is deleted once the provider takes it", async () => {
      const collection = await createPaymentCollection({ regionId: region.id, amount: 1100 })
      const session = await createTestPaySession(collection.id)
      await psp.behaviour({ deletePayment: { fail: fault } })

      const res = await api.post(`${base(collection.id)}/sessions`, { provider_id: "manual" })

      // The removal is committed with the switch; deleting at the provider is the request's (then the reconciler's) to finish.
      expect(res.status).toBe(200)
      expect((await linkedSessions(collection.id)).map((r) => r.provider_id)).toEqual(["manual"])
      const pending = await waitFor("the failed delete to be journaled", async () =>
        (await attemptRows(collection.id)).find((r) => r.operation === "delete" && r.outcome !== null)
      )
      expect(pending).toMatchObject({ payment_session_id: session.id, state: "started", outcome: FAULT_OUTCOME[fault] })
      expect(await psp.intent(session.data.id)).toMatchObject({ status: "pending" })

      await psp.behaviour({ deletePayment: null })
      await waitForSettledJournal(collection.id)
      expect(await psp.intent(session.data.id)).toMatchObject({ status: "canceled" })
    })

    it("at delete during a refresh: the new session replaces the old one, and the old provider session is deleted once the provider takes it", async () => {
      const collection = await createPaymentCollection({ regionId: region.id, amount: 1300 })
      const session = await createTestPaySession(collection.id)
      await psp.behaviour({ deletePayment: { fail: fault } })

      const res = await api.post(`${base(collection.id)}/sessions/${session.id}`)

      expect(res.status).toBe(200)
      const fresh = res.body.payment_session
      expect((await linkedSessions(collection.id)).map((r) => r.id)).toEqual([fresh.id])
      await waitFor("the failed delete to be journaled", async () =>
        (await attemptRows(collection.id)).find((r) => r.operation === "delete" && r.outcome !== null)
      )
      expect(await psp.intent(session.data.id)).toMatchObject({ status: "pending" })

      await psp.behaviour({ deletePayment: null })
      await waitForSettledJournal(collection.id)
      expect(await psp.intent(session.data.id)).toMatchObject({ status: "canceled" })
      expect((await psp.state()).live.map((i) => i.id)).toEqual([fresh.data.id])
    })
  })

  describe("a provider that answers only after provider_timeout_ms", () => {
    it("initiate: 504, and the intent it creates late does not stay live without a session row", async () => {
      const collection = await createPaymentCollection({ regionId: region.id, amount: 1400 })
      await psp.behaviour({ initiatePayment: { delayMs: PROVIDER_TIMEOUT_MS + 1000 } })

      const res = await api.post(`${base(collection.id)}/sessions`, { provider_id: "test-pay" })

      expectUnavailable(res, "hang")
      await waitFor("the late initiatePayment to finish", async () => (await psp.state()).inflight.initiatePayment === 0)
      await sleep(500) // time for whatever the plugin does with the late answer
      expect(await linkedSessions(collection.id)).toEqual([])
      const { intents, live } = await psp.state()
      expect(intents).toEqual([expect.objectContaining({ resource_id: collection.id, status: "canceled" })])
      expect(live).toEqual([])
    })

    it("authorize: 504, and the authorization it reports late is recorded, never canceled", async () => {
      const collection = await createPaymentCollection({ regionId: region.id, amount: 1500 })
      const session = await createTestPaySession(collection.id)
      await psp.confirmSession(session)
      await psp.behaviour({ authorizePayment: { delayMs: PROVIDER_TIMEOUT_MS + 1000 } })

      const res = await api.post(`${base(collection.id)}/sessions/${session.id}/authorize`)

      expectUnavailable(res, "hang")
      await waitFor("the late authorization to be recorded", async () => (await linkedPayments(collection.id)).length === 1)
      expect((await linkedSessions(collection.id))[0]).toMatchObject({ id: session.id, status: "authorized" })
      expect(await collectionRow(collection.id)).toMatchObject({ status: "authorized", authorized_amount: 1500 })
      expect(await psp.intent(session.data.id)).toMatchObject({ status: "authorized" })
      expect((await psp.state()).calls.cancelPayment).toBe(0)
    })
  })

  describe("a database write fails after the provider acted: what it initiated is deleted there, what it authorized is recorded afterwards", () => {
    it("linking a new session (payment_collection_sessions) fails → the intent is deleted at the provider; a retry succeeds", async () => {
      const collection = await createPaymentCollection({ regionId: region.id, amount: 1600 })
      const drop = await installFailingTrigger(
        "payment_collection_sessions",
        "INSERT",
        `NEW.payment_collection_id = '${collection.id}'`
      )
      let res: HttpResponse
      try {
        res = await api.post(`${base(collection.id)}/sessions`, { provider_id: "test-pay" })
      } finally {
        await drop()
      }

      expectDatabaseFailure(res)
      const state = await psp.state()
      expect(state.calls.initiatePayment).toBe(1)
      expect(state.calls.deletePayment).toBe(1)
      expect(state.intents).toEqual([expect.objectContaining({ resource_id: collection.id, status: "canceled" })])
      expect(await linkedSessions(collection.id)).toEqual([])

      const retry = await api.post(`${base(collection.id)}/sessions`, { provider_id: "test-pay" })
      expect(retry.status).toBe(200)
      const rows = await linkedSessions(collection.id)
      expect((await psp.state()).live.map((i) => i.id)).toEqual([rows[0].data.id])
    })

    it("saving the new payment_session row fails → the intent is deleted at the provider", async () => {
      const amount = 7441 // identifies this test's rows for the trigger
      const collection = await createPaymentCollection({ regionId: region.id, amount })
      const drop = await installFailingTrigger("payment_session", "INSERT", `NEW.amount = ${amount}`)
      let res: HttpResponse
      try {
        res = await api.post(`${base(collection.id)}/sessions`, { provider_id: "test-pay" })
      } finally {
        await drop()
      }

      expectDatabaseFailure(res)
      const state = await psp.state()
      expect(state.calls.initiatePayment).toBe(1)
      expect(state.live).toEqual([])
      expect(await linkedSessions(collection.id)).toEqual([])
    })

    it.each([
      ["inserting the payment", "payment", "INSERT", (amount: number) => `NEW.amount = ${amount}`],
      ["saving the authorized payment_session row", "payment_session", "UPDATE", (amount: number) => `NEW.amount = ${amount} AND NEW.status = 'authorized'`],
    ] as const)("%s fails → 500; the authorization stays at the provider and is recorded once the database takes it", async (_what, table, event, condition) => {
      const amount = table === "payment" ? 7331 : 7551
      const collection = await createPaymentCollection({ regionId: region.id, amount })
      const session = await createTestPaySession(collection.id)
      await psp.confirmSession(session)
      const drop = await installFailingTrigger(table, event, condition(amount))
      let res: HttpResponse
      try {
        res = await api.post(`${base(collection.id)}/sessions/${session.id}/authorize`)
        expectDatabaseFailure(res)
        expect(await linkedPayments(collection.id)).toEqual([])
      } finally {
        await drop()
      }

      await waitFor("the authorization to be recorded", async () => (await linkedPayments(collection.id)).length === 1)
      expect((await linkedSessions(collection.id))[0]).toMatchObject({ id: session.id, status: "authorized" })
      expect(await collectionRow(collection.id)).toMatchObject({ status: "authorized", authorized_amount: amount })
      const state = await psp.state()
      expect(state.calls.authorizePayment).toBe(1)
      expect(state.calls.cancelPayment).toBe(0)
      expect(await psp.intent(session.data.id)).toMatchObject({ status: "authorized" })
      expect((await attemptRows(collection.id)).find((r) => r.operation === "authorize")).toMatchObject({ state: "adopted" })

      // A retry answers what is recorded, without asking the provider again.
      const retry = await api.post(`${base(collection.id)}/sessions/${session.id}/authorize`)
      expect(retry.status).toBe(200)
      expect((await psp.state()).calls.authorizePayment).toBe(1)
    })
  })
})
