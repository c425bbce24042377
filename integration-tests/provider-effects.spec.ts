import { Api, HttpResponse } from "./helpers/http"
import { createPaymentCollection, createRegion, db } from "./helpers/factories"
import { psp } from "./helpers/fake-psp"
import { attemptRows } from "./helpers/journal"
import { ExtraBackend, stopExtraBackends } from "./helpers/backend"
import { base, collectionRow, linkedPayments, linkedSessions, orphanSessions } from "./helpers/payments"
import {
  MODES,
  Timings,
  agree,
  allClosed,
  providerAndDatabase,
  pspCallAt,
  startTwoBackends,
  waitForAgreement,
  waitForJournal,
} from "./helpers/provider-agreement"

// A provider call that takes effect and then fails — a 500 after the PSP
// acted, or a connection reset after it — is an uncertain effect, and is
// settled: an initiate by the provider's finder (the session it created is
// found and deleted), an update by setting the provider back to the
// database's amount, an authorize by asking the provider and adopting the
// authorization, a delete by trying again until the provider confirms.
// Before, such a call was journaled `failed` ("no effect") and nothing
// settled it: the intent stayed live without a session, the provider held
// 600 where the database held 1000, and a later authorize recorded 1000.
//
// Each case runs on one backend, and with the failing request on one backend
// and what follows on another. The backends answer 504 after 1 s, sweep every
// 0.5 s and conclude a finder's search 1 s after the call.

type Fault = "throw" | "reset"
const FAULTS: Fault[] = ["throw", "reset"]
const PSP_OUTCOME: Record<Fault, string> = { throw: "threw", reset: "reset" }

function expectUncertain(res: HttpResponse, provider = "test-pay") {
  expect({ status: res.status, type: res.body.type, code: res.body.code }).toEqual({
    status: 502,
    type: "unexpected_state",
    code: "payment_provider_error",
  })
  expect(res.body.message).toContain(provider)
}

describe("a provider call that acts and then fails is settled at the provider", () => {
  let region: any
  let backends: ExtraBackend[]
  let apis: Api[]
  const timings = new Timings("provider effects")

  beforeAll(async () => {
    ;({ backends, apis } = await startTwoBackends())
    region = await createRegion({ providers: ["manual", "test-pay"] })
  }, 240_000)

  beforeEach(() => psp.reset())

  afterEach(async () => {
    expect(await orphanSessions()).toEqual([])
  })

  afterAll(async () => {
    timings.print()
    await psp.reset()
    await stopExtraBackends()
    await db.end()
  }, 60_000)

  async function sessionOn(shop: Api, collectionId: string, provider = "test-pay") {
    const res = await shop.post(`${base(collectionId)}/sessions`, { provider_id: provider })
    expect(res.status).toBe(200)
    return res.body.payment_collection.payment_sessions[0]
  }

  describe.each(MODES)("$name", (mode) => {
    const failing = () => apis[mode.failing]
    const next = () => apis[mode.next]

    it.each(FAULTS)(
      "initiate creates the intent, then fails (%s): 502, the finder finds the intent and it is deleted; the row ends undone; a retry holds one intent",
      async (fault) => {
        const collection = await createPaymentCollection({ regionId: region.id, amount: 1200 })
        await psp.behaviour({ initiatePayment: { fail: fault, afterEffect: true, times: 1, resourceId: collection.id } })

        const res = await failing().post(`${base(collection.id)}/sessions`, { provider_id: "test-pay" })
        const answeredAt = Date.now()

        expectUncertain(res)
        const failure = await pspCallAt({ method: "initiatePayment", resourceId: collection.id })
        expect(failure.outcome).toBe(PSP_OUTCOME[fault])
        // The PSP made the intent before it failed: the orphan.
        expect(failure.intentId).toMatch(/^pi_/)
        // The request settled its own call before answering: the finder listed the
        // collection's intents and the one the database does not name was deleted.
        expect(await providerAndDatabase(collection.id)).toEqual({ provider: [], database: [] })
        expect(await psp.intent(failure.intentId!)).toMatchObject({ status: "canceled" })
        expect((await psp.history({ method: "findPaymentSessions", resourceId: collection.id })).length).toBeGreaterThanOrEqual(1)
        expect((await psp.history({ method: "deletePayment", intentId: failure.intentId! })).map((c) => c.outcome)).toEqual(["ok"])
        timings.record(`initiate ${fault} (${mode.name})`, "agree (by the answer)", answeredAt - failure.at)

        // The conclusion waits until the window was searched for finder_settle_ms.
        const settled = await waitForJournal(collection.id, "the initiate to be settled", allClosed, failure.at)
        expect(settled.rows.find((r) => r.operation === "initiate")).toMatchObject({ state: "undone", outcome: "error" })
        timings.record(`initiate ${fault} (${mode.name})`, "journal closed", settled.ms)

        const retry = await next().post(`${base(collection.id)}/sessions`, { provider_id: "test-pay" })
        expect(retry.status).toBe(200)
        const { provider, database } = await providerAndDatabase(collection.id)
        expect(provider).toHaveLength(1)
        expect(provider).toEqual(database)
      }
    )

    it("initiate whose intent shows in the finder only later (an eventually consistent index): found and deleted once it shows", async () => {
      const lagMs = 2000
      await psp.finderLag(lagMs)
      const collection = await createPaymentCollection({ regionId: region.id, amount: 1300 })
      await psp.behaviour({ initiatePayment: { fail: "reset", afterEffect: true, times: 1, resourceId: collection.id } })

      const res = await failing().post(`${base(collection.id)}/sessions`, { provider_id: "test-pay" })

      expectUncertain(res)
      const failure = await pspCallAt({ method: "initiatePayment", resourceId: collection.id })
      // Not visible yet: the intent is still live, and the row stays open (the answer was not complete).
      expect((await psp.liveIntents(collection.id)).map((i) => i.id)).toEqual([failure.intentId])
      expect((await attemptRows(collection.id)).find((r) => r.operation === "initiate")).toMatchObject({ state: "uncertain" })

      const agreedMs = await waitForAgreement(collection.id, failure.at)
      expect(agreedMs).toBeGreaterThanOrEqual(lagMs - 100)
      timings.record(`initiate reset, finder lag ${lagMs} ms (${mode.name})`, "agree", agreedMs)
      const settled = await waitForJournal(collection.id, "the initiate to be settled", allClosed, failure.at)
      expect(settled.rows.find((r) => r.operation === "initiate")).toMatchObject({ state: "undone" })
      timings.record(`initiate reset, finder lag ${lagMs} ms (${mode.name})`, "journal closed", settled.ms)
      expect(await psp.intent(failure.intentId!)).toMatchObject({ status: "canceled" })

      const retry = await next().post(`${base(collection.id)}/sessions`, { provider_id: "test-pay" })
      expect(retry.status).toBe(200)
      expect(await agree(collection.id)).toBe(true)
    })

    it("initiate acts then fails and the finder fails too: the sweep is retried until the finder answers", async () => {
      const collection = await createPaymentCollection({ regionId: region.id, amount: 1350 })
      await psp.behaviour({
        initiatePayment: { fail: "throw", afterEffect: true, times: 1, resourceId: collection.id },
        findPaymentSessions: { fail: "throw", times: 3, resourceId: collection.id },
      })

      const res = await failing().post(`${base(collection.id)}/sessions`, { provider_id: "test-pay" })

      expectUncertain(res)
      const failure = await pspCallAt({ method: "initiatePayment", resourceId: collection.id })
      expect((await psp.liveIntents(collection.id)).map((i) => i.id)).toEqual([failure.intentId])

      timings.record(`initiate throw, finder down 3 times (${mode.name})`, "agree", await waitForAgreement(collection.id, failure.at))
      const settled = await waitForJournal(collection.id, "the initiate to be settled", allClosed, failure.at)
      timings.record(`initiate throw, finder down 3 times (${mode.name})`, "journal closed", settled.ms)
      expect(settled.rows.find((r) => r.operation === "initiate")).toMatchObject({ state: "undone" })
      const finds = await psp.history({ method: "findPaymentSessions", resourceId: collection.id })
      expect(finds.slice(0, 3).map((c) => c.outcome)).toEqual(["threw", "threw", "threw"])
      expect(finds.slice(3).every((c) => c.outcome === "ok")).toBe(true)
      expect(finds.length).toBeGreaterThanOrEqual(4)
      expect(await psp.intent(failure.intentId!)).toMatchObject({ status: "canceled" })

      const retry = await next().post(`${base(collection.id)}/sessions`, { provider_id: "test-pay" })
      expect(retry.status).toBe(200)
      expect(await agree(collection.id)).toBe(true)
    })

    it.each(FAULTS)(
      "update changes the amount, then fails (%s): 502, the provider is set back to the database's amount; a later authorize records what the provider holds",
      async (fault) => {
        const collection = await createPaymentCollection({ regionId: region.id, amount: 1000 })
        const session = await sessionOn(failing(), collection.id)
        await psp.behaviour({ updatePayment: { fail: fault, afterEffect: true, times: 1, intentId: session.data.id } })

        const res = await failing().post(`${base(collection.id)}/sessions/batch`, {
          sessions: [
            { provider_id: "test-pay", amount: 600, session_id: session.id },
            { provider_id: "manual", amount: 400 },
          ],
        })
        const answeredAt = Date.now()

        expectUncertain(res)
        const failure = await pspCallAt({ method: "updatePayment", intentId: session.data.id })
        expect(failure.outcome).toBe(PSP_OUTCOME[fault])
        // The update took effect (600), then the request set it back before answering.
        const updates = await psp.history({ method: "updatePayment", intentId: session.data.id })
        expect(updates.map((c) => [c.outcome, (c.args as any)?.[0]?.amount])).toEqual([
          [PSP_OUTCOME[fault], 600],
          ["ok", 1000],
        ])
        expect(await providerAndDatabase(collection.id)).toEqual({
          provider: [{ id: session.data.id, amount: 1000 }],
          database: [{ id: session.data.id, amount: 1000 }],
        })
        timings.record(`update ${fault} (${mode.name})`, "agree (by the answer)", answeredAt - failure.at)
        const settled = await waitForJournal(collection.id, "the update and its sweep to be settled", allClosed, failure.at)
        expect(settled.rows.filter((r) => r.operation === "update").map((r) => r.state)).toEqual(["undone", "committed"])
        // What the lost call may have created is swept by a row of its own.
        expect(settled.rows.filter((r) => r.operation === "find").map((r) => r.state)).toContain("undone")
        timings.record(`update ${fault} (${mode.name})`, "journal closed", settled.ms)

        await psp.confirmSession(session)
        const authorized = await next().post(`${base(collection.id)}/sessions/${session.id}/authorize`)

        expect(authorized.status).toBe(200)
        expect(authorized.body.payment_session).toMatchObject({ id: session.id, status: "authorized", amount: 1000 })
        const intent = await psp.intent(session.data.id)
        expect(intent).toMatchObject({ status: "authorized", amount: 1000 })
        const payments = await linkedPayments(collection.id)
        expect(payments.map((p) => p.amount)).toEqual([intent.amount])
        expect(await collectionRow(collection.id)).toMatchObject({ authorized_amount: intent.amount })
      }
    )

    it("update acts then fails, and setting it back fails too: it is set back on a later pass, before the next request calls the provider", async () => {
      const collection = await createPaymentCollection({ regionId: region.id, amount: 1000 })
      const session = await sessionOn(failing(), collection.id)
      await psp.behaviour({
        updatePayment: [
          { fail: "throw", afterEffect: true, times: 1, intentId: session.data.id },
          // The request's own set-back crashes before the PSP acts.
          { fail: "throw", times: 1, intentId: session.data.id },
        ],
      })
      const batch = (testPay: number) => ({
        sessions: [
          { provider_id: "test-pay", amount: testPay, session_id: session.id },
          { provider_id: "manual", amount: 1000 - testPay },
        ],
      })

      const res = await failing().post(`${base(collection.id)}/sessions/batch`, batch(600))

      expectUncertain(res)
      const failure = await pspCallAt({ method: "updatePayment", intentId: session.data.id })
      expect((await linkedSessions(collection.id)).map((s) => [s.id, s.amount])).toEqual([[session.id, 1000]])

      // The shopper tries again at once: the open update on the session is settled
      // first (by this request, or by a reconciler pass that came sooner).
      const retry = await next().post(`${base(collection.id)}/sessions/batch`, batch(700))

      expect(retry.status).toBe(200)
      const updates = await psp.history({ method: "updatePayment", intentId: session.data.id })
      expect(updates.map((c) => [c.outcome, (c.args as any)?.[0]?.amount])).toEqual([
        ["threw", 600],
        ["threw", 1000],
        ["ok", 1000],
        ["ok", 700],
      ])
      timings.record(`update throw, set-back fails once (${mode.name})`, "agree (set back)", updates[2].at - failure.at)
      const settled = await waitForJournal(collection.id, "every call to be settled", allClosed, failure.at)
      timings.record(`update throw, set-back fails once (${mode.name})`, "journal closed", settled.ms)
      expect(await providerAndDatabase(collection.id)).toEqual({
        provider: [{ id: session.data.id, amount: 700 }],
        database: [{ id: session.data.id, amount: 700 }],
      })
    })

    it("update acts then fails and the shopper confirms the amount it left before it is set back: the authorization of what the provider holds is recorded, never more", async () => {
      const collection = await createPaymentCollection({ regionId: region.id, amount: 1000 })
      const session = await sessionOn(failing(), collection.id)
      await psp.behaviour({
        updatePayment: [
          { fail: "throw", afterEffect: true, times: 1, intentId: session.data.id },
          { fail: "throw", times: 1, intentId: session.data.id },
        ],
      })

      const res = await failing().post(`${base(collection.id)}/sessions/batch`, {
        sessions: [
          { provider_id: "test-pay", amount: 600, session_id: session.id },
          { provider_id: "manual", amount: 400 },
        ],
      })

      expectUncertain(res)
      const failure = await pspCallAt({ method: "updatePayment", intentId: session.data.id })
      // The storefront still shows the session's client secret: the shopper confirms
      // the intent, which holds 600, before the plugin could set it back.
      const confirmed = await psp.confirmSession(session)
      expect(confirmed).toMatchObject({ status: "authorized", amount: 600 })

      const authorized = await next().post(`${base(collection.id)}/sessions/${session.id}/authorize`)

      // An authorized intent's amount is final: the set-back is refused, and what the
      // provider authorized is recorded — the session is worth 600, the collection is partly paid.
      expect(authorized.status).toBe(200)
      expect(authorized.body.payment_session).toMatchObject({ id: session.id, status: "authorized", amount: 600 })
      timings.record(`update throw, shopper confirms before the set-back (${mode.name})`, "agree", await waitForAgreement(collection.id, failure.at))
      const settled = await waitForJournal(collection.id, "every call to be settled", allClosed, failure.at)
      timings.record(`update throw, shopper confirms before the set-back (${mode.name})`, "journal closed", settled.ms)
      expect(settled.rows.filter((r) => r.operation === "update")[0]).toMatchObject({ state: "adopted" })
      expect((await linkedPayments(collection.id)).map((p) => p.amount)).toEqual([600])
      expect(await collectionRow(collection.id)).toMatchObject({ status: "partially_authorized", authorized_amount: 600 })
      expect(await psp.intent(session.data.id)).toMatchObject({ status: "authorized", amount: 600 })
      expect((await psp.state()).calls.cancelPayment).toBe(0)
    })

    it.each(FAULTS)(
      "authorize reads the shopper's confirmation, then fails (%s): 502, and the authorization is adopted: session, payment and status recorded",
      async (fault) => {
        const collection = await createPaymentCollection({ regionId: region.id, amount: 900 })
        const session = await sessionOn(failing(), collection.id)
        await psp.confirmSession(session)
        await psp.behaviour({ authorizePayment: { fail: fault, afterEffect: true, times: 1, intentId: session.data.id } })

        const res = await failing().post(`${base(collection.id)}/sessions/${session.id}/authorize`)
        const answeredAt = Date.now()

        expectUncertain(res)
        const failure = await pspCallAt({ method: "authorizePayment", intentId: session.data.id })
        expect(failure.outcome).toBe(PSP_OUTCOME[fault])
        // Asked before the answer: the provider holds an authorization, so it is recorded.
        expect((await linkedSessions(collection.id))[0]).toMatchObject({ id: session.id, status: "authorized" })
        const payments = await linkedPayments(collection.id)
        expect(payments).toEqual([expect.objectContaining({ provider_id: "test-pay", amount: 900 })])
        expect(payments[0].data.id).toBe(session.data.id)
        expect(await collectionRow(collection.id)).toMatchObject({ status: "authorized", authorized_amount: 900 })
        expect(await psp.intent(session.data.id)).toMatchObject({ status: "authorized", amount: 900 })
        timings.record(`authorize ${fault} (${mode.name})`, "agree (by the answer)", answeredAt - failure.at)
        const settled = await waitForJournal(collection.id, "the authorize to be settled", allClosed, failure.at)
        expect(settled.rows.find((r) => r.operation === "authorize")).toMatchObject({ state: "adopted" })
        timings.record(`authorize ${fault} (${mode.name})`, "journal closed", settled.ms)

        // The storefront retries: it is answered the authorization, recorded once.
        const retry = await next().post(`${base(collection.id)}/sessions/${session.id}/authorize`)
        expect(retry.status).toBe(200)
        expect(retry.body.payment_session).toMatchObject({ id: session.id, status: "authorized" })
        expect(await linkedPayments(collection.id)).toHaveLength(1)
        expect((await psp.state()).calls.cancelPayment).toBe(0)
      }
    )

    it.each([
      ["acts, then fails (throw) 3 times", { fail: "throw", afterEffect: true, times: 3 }],
      ["acts, then loses its connection 3 times", { fail: "reset", afterEffect: true, times: 3 }],
      ["is refused 3 times", { fail: "refuse", times: 3 }],
    ] as const)(
      "the delete of a replaced session %s: the switch is answered 200, and the delete is retried until the provider confirms it",
      async (what, rule) => {
        const collection = await createPaymentCollection({ regionId: region.id, amount: 1100 })
        const session = await sessionOn(failing(), collection.id)
        await psp.behaviour({ deletePayment: { ...rule, intentId: session.data.id } })

        const res = await failing().post(`${base(collection.id)}/sessions`, { provider_id: "manual" })

        expect(res.status).toBe(200)
        expect((await linkedSessions(collection.id)).map((s) => s.provider_id)).toEqual(["manual"])
        const failure = await pspCallAt({ method: "deletePayment", intentId: session.data.id })
        timings.record(`delete ${what} (${mode.name})`, "agree", await waitForAgreement(collection.id, failure.at))
        const settled = await waitForJournal(collection.id, "the delete to be confirmed", allClosed, failure.at)
        timings.record(`delete ${what} (${mode.name})`, "journal closed", settled.ms)
        expect(settled.rows.find((r) => r.operation === "delete")).toMatchObject({ payment_session_id: session.id, state: "committed" })
        const deletes = await psp.history({ method: "deletePayment", intentId: session.data.id })
        expect(deletes.map((c) => c.outcome)).toEqual([
          ...Array(3).fill(rule.fail === "refuse" ? "refused" : PSP_OUTCOME[rule.fail]),
          "ok",
        ])
        expect(await psp.intent(session.data.id)).toMatchObject({ status: "canceled" })

        // The collection goes on: a new card session on the other backend.
        const again = await next().post(`${base(collection.id)}/sessions`, { provider_id: "test-pay" })
        expect(again.status).toBe(200)
        expect(await agree(collection.id)).toBe(true)
      }
    )
  })
})
