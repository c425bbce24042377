import { Api, HttpResponse } from "./helpers/http"
import { createPaymentCollection, createRegion, db } from "./helpers/factories"
import { psp, PspOperation } from "./helpers/fake-psp"
import { ExtraBackend, stopExtraBackends } from "./helpers/backend"
import { base, collectionRow, linkedPayments, linkedSessions, orphanSessions, retryWhileBusy, sleep, waitFor } from "./helpers/payments"
import { MODES, SMALL_OPTIONS, Timings, allClosed, providerAndDatabase, startTwoBackends, waitForAgreement, waitForJournal } from "./helpers/provider-agreement"

// One call at a time per provider session. A call that outlives
// provider_timeout_ms is answered 504 but is still in flight at the provider;
// a request that would call the provider on that collection's sessions
// meanwhile waits for its answer (up to provider_timeout_ms), then answers
// 409 with Retry-After — the late answer is settled first. Before, the lock
// was released with the 504 and the next request called the provider at once:
// a second authorize while the first was running, or an authorize before the
// late update was set back.
//
// Backends: provider_timeout_ms 1000, so a call's lease is 2000 ms; the
// provider answers after 1800 ms (late, within the lease).

const TIMEOUT_MS = SMALL_OPTIONS.provider_timeout_ms
const LEASE_MS = 2 * TIMEOUT_MS
const LATE_MS = 1800

function expectBusy(res: HttpResponse) {
  expect({ status: res.status, type: res.body.type }).toEqual({ status: 409, type: "conflict" })
  const retryAfter = Number(res.headers["retry-after"])
  expect(retryAfter).toBeGreaterThanOrEqual(1)
  expect(retryAfter).toBeLessThanOrEqual(Math.ceil(LEASE_MS / 1000))
}

describe("one provider call at a time per payment session", () => {
  let region: any
  let backends: ExtraBackend[]
  let apis: Api[]
  const timings = new Timings("one call per session")

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

  async function sessionOn(shop: Api, collectionId: string) {
    const res = await shop.post(`${base(collectionId)}/sessions`, { provider_id: "test-pay" })
    expect(res.status).toBe(200)
    return res.body.payment_collection.payment_sessions[0]
  }

  /** Waits until the PSP is running the call; answers when it began. */
  async function inFlightAtPsp(method: PspOperation, intentId: string): Promise<number> {
    await waitFor(`${method} to be in flight at the PSP`, async () => (await psp.state()).inflight[method] === 1, { intervalMs: 10 })
    const [call] = await psp.history({ method, intentId })
    return call.at
  }

  describe.each(MODES)("$name", (mode) => {
    const first = () => apis[mode.failing]
    const next = () => apis[mode.next]

    it("an authorize still running after its 504: a second authorize sent meanwhile waits, then 409 with Retry-After; the PSP sees one authorize at a time; a retry answers 200", async () => {
      const collection = await createPaymentCollection({ regionId: region.id, amount: 1500 })
      const session = await sessionOn(first(), collection.id)
      await psp.confirmSession(session)
      await psp.behaviour({ authorizePayment: { delayMs: LATE_MS, times: 1, intentId: session.data.id } })

      let failedAt = 0
      const firstAnswer = first()
        .post(`${base(collection.id)}/sessions/${session.id}/authorize`)
        .then((r) => ((failedAt = Date.now()), r))
      const callAt = await inFlightAtPsp("authorizePayment", session.data.id)
      await sleep(Math.max(0, callAt + 200 - Date.now()))
      const secondSent = Date.now()
      const second = await next().post(`${base(collection.id)}/sessions/${session.id}/authorize`)
      const secondWaited = Date.now() - secondSent
      const firstRes = await firstAnswer

      expect({ status: firstRes.status, code: firstRes.body.code }).toEqual({ status: 504, code: "payment_provider_timeout" })
      // It waited for the running call (up to provider_timeout_ms), then gave up.
      expectBusy(second)
      expect(secondWaited).toBeGreaterThanOrEqual(TIMEOUT_MS - 100)
      const state = await psp.state()
      expect(state.calls.authorizePayment).toBe(1)
      expect(state.maxInflight.authorizePayment).toBe(1)

      // The late answer (an authorization) is recorded by the backend that made the call.
      await waitFor("the late authorization to be recorded", async () => (await linkedPayments(collection.id)).length === 1, { intervalMs: 10 })
      timings.record(`authorize in flight (${mode.name})`, "recorded after the 504", Date.now() - failedAt)
      timings.record(`authorize in flight (${mode.name})`, "recorded after the late answer", Date.now() - (callAt + LATE_MS))
      timings.record(`authorize in flight (${mode.name})`, "second request waited", secondWaited)

      const retry = await retryWhileBusy(() => next().post(`${base(collection.id)}/sessions/${session.id}/authorize`))
      expect(retry.status).toBe(200)
      expect(retry.body.payment_session).toMatchObject({ id: session.id, status: "authorized" })
      expect(await linkedPayments(collection.id)).toEqual([expect.objectContaining({ amount: 1500 })])
      expect(await collectionRow(collection.id)).toMatchObject({ status: "authorized", authorized_amount: 1500 })
      const after = await psp.state()
      expect(after.maxInflight.authorizePayment).toBe(1)
      expect(after.calls.cancelPayment).toBe(0)
      const settled = await waitForJournal(collection.id, "no open row", allClosed, failedAt)
      expect(settled.rows.filter((r) => r.operation === "authorize").map((r) => r.state)).toEqual(["adopted"])
    })

    it("an authorize sent while the first one runs, late enough to see its answer: waits for it, then 200 (or 409 with Retry-After, then 200)", async () => {
      const collection = await createPaymentCollection({ regionId: region.id, amount: 1600 })
      const session = await sessionOn(first(), collection.id)
      await psp.confirmSession(session)
      await psp.behaviour({ authorizePayment: { delayMs: LATE_MS, times: 1, intentId: session.data.id } })

      const firstAnswer = first().post(`${base(collection.id)}/sessions/${session.id}/authorize`)
      const callAt = await inFlightAtPsp("authorizePayment", session.data.id)
      // Sent after the first one's 504, while its call still runs (it answers at 1800 ms).
      await sleep(Math.max(0, callAt + TIMEOUT_MS + 100 - Date.now()))
      const secondSent = Date.now()
      const second = await retryWhileBusy(() => next().post(`${base(collection.id)}/sessions/${session.id}/authorize`))
      const secondTook = Date.now() - secondSent
      const firstRes = await firstAnswer

      expect(firstRes.status).toBe(504)
      expect(second.status).toBe(200)
      expect(second.body.payment_session).toMatchObject({ id: session.id, status: "authorized", amount: 1600 })
      // It was answered only after the provider answered the first call.
      expect(secondSent + secondTook).toBeGreaterThanOrEqual(callAt + LATE_MS)
      const state = await psp.state()
      expect(state.calls.authorizePayment).toBe(1)
      expect(state.maxInflight.authorizePayment).toBe(1)
      expect(await linkedPayments(collection.id)).toHaveLength(1)
      timings.record(`authorize answered late (${mode.name})`, "second request answered after", secondTook)
    })

    it("an update still running after its 504: an authorize meanwhile reaches the provider only after the late update was set back; the payment is what the provider holds", async () => {
      const collection = await createPaymentCollection({ regionId: region.id, amount: 1000 })
      const session = await sessionOn(first(), collection.id)
      await psp.behaviour({ updatePayment: { delayMs: LATE_MS, times: 1, intentId: session.data.id } })

      let failedAt = 0
      const firstAnswer = first()
        .post(`${base(collection.id)}/sessions/batch`, {
          sessions: [
            { provider_id: "test-pay", amount: 600, session_id: session.id },
            { provider_id: "manual", amount: 400 },
          ],
        })
        .then((r) => ((failedAt = Date.now()), r))
      const callAt = await inFlightAtPsp("updatePayment", session.data.id)
      await sleep(Math.max(0, callAt + 200 - Date.now()))
      const early = await next().post(`${base(collection.id)}/sessions/${session.id}/authorize`)
      const firstRes = await firstAnswer

      expect({ status: firstRes.status, code: firstRes.body.code }).toEqual({ status: 504, code: "payment_provider_timeout" })
      expectBusy(early)
      expect((await psp.state()).calls.authorizePayment).toBe(0)

      // The late update lands (600 at 1800 ms) and is set back to the database's amount (1000).
      const setBack = await waitFor<any>("the late update to be set back", async () =>
        (await psp.history({ method: "updatePayment", intentId: session.data.id })).find((c, i) => i > 0 && c.outcome === "ok")
      )
      await waitForAgreement(collection.id, failedAt)
      timings.record(`update in flight (${mode.name})`, "agree after the 504", setBack.at - failedAt)
      timings.record(`update in flight (${mode.name})`, "agree after the late effect", setBack.at - (callAt + LATE_MS))
      expect(await providerAndDatabase(collection.id)).toEqual({
        provider: [{ id: session.data.id, amount: 1000 }],
        database: [{ id: session.data.id, amount: 1000 }],
      })

      await psp.confirmSession(session)
      const authorized = await retryWhileBusy(() => next().post(`${base(collection.id)}/sessions/${session.id}/authorize`))

      expect(authorized.status).toBe(200)
      const updates = await psp.history({ method: "updatePayment", intentId: session.data.id })
      expect(updates.map((c) => [c.outcome, (c.args as any)?.[0]?.amount])).toEqual([
        ["ok", 600],
        ["ok", 1000],
      ])
      const authorizes = await psp.history({ method: "authorizePayment", intentId: session.data.id })
      expect(authorizes.length).toBeGreaterThanOrEqual(1)
      expect(authorizes[0].at).toBeGreaterThanOrEqual(updates[1].at)
      const intent = await psp.intent(session.data.id)
      expect(intent).toMatchObject({ status: "authorized", amount: 1000 })
      expect((await linkedPayments(collection.id)).map((p) => p.amount)).toEqual([intent.amount])
      expect((await linkedSessions(collection.id)).map((s) => [s.id, s.amount])).toEqual([[session.id, 1000]])
      const settled = await waitForJournal(collection.id, "no open row", allClosed, failedAt)
      timings.record(`update in flight (${mode.name})`, "journal closed", settled.ms)
    })
  })
})
