import { Api, HttpResponse } from "./helpers/http"
import { createPaymentCollection, createRegion, db } from "./helpers/factories"
import { ConfirmOutcome, psp } from "./helpers/fake-psp"
import { fakeStripe } from "./helpers/fake-stripe"
import { ExtraBackend, stopExtraBackends } from "./helpers/backend"
import { base, collectionRow, linkedPayments, linkedSessions, orphanSessions } from "./helpers/payments"
import { expectMedusaError } from "./helpers/collection-state"
import { MODES, Timings, agree, allClosed, startTwoBackends, waitForJournal } from "./helpers/provider-agreement"

// Nothing the shopper confirmed is canceled by a store request. The shopper
// confirms the card in the browser (the intent holds the money) and, before
// the storefront reports it with authorize, a request would remove or replace
// that session: a create for another provider, a batch without it, a refresh.
// The plugin asks the provider first: an authorization is recorded (session,
// payment, the collection's status) and the request answers 400 not_allowed
// naming the session; the intent is never canceled. Before, the request
// answered 200 and canceled the intent, and the database kept neither session
// nor payment; a captured intent could not even be canceled.

type Removal = { name: string; send: (shop: Api, collectionId: string, session: any, amount: number) => Promise<HttpResponse> }

const REMOVALS: Removal[] = [
  {
    name: "a create for another provider",
    send: (shop, id) => shop.post(`${base(id)}/sessions`, { provider_id: "manual" }),
  },
  {
    name: "a batch without the session",
    send: (shop, id, _session, amount) => shop.post(`${base(id)}/sessions/batch`, { sessions: [{ provider_id: "manual", amount }] }),
  },
  {
    name: "a refresh of the session",
    send: (shop, id, session) => shop.post(`${base(id)}/sessions/${session.id}`),
  },
]

const CONFIRMATIONS: ConfirmOutcome[] = ["authorized", "captured"]

function expectRefusedNaming(res: HttpResponse, sessionId: string) {
  expectMedusaError(res, 400, "not_allowed")
  expect(res.body.message).toContain(sessionId)
}

describe("ask before removing: a session the shopper confirmed at the provider is never canceled by a store request", () => {
  let region: any
  let stripeRegion: any
  let backends: ExtraBackend[]
  let apis: Api[]
  const timings = new Timings("ask before removing")

  beforeAll(async () => {
    ;({ backends, apis } = await startTwoBackends())
    region = await createRegion({ providers: ["manual", "test-pay"] })
    stripeRegion = await createRegion({ providers: ["manual", "stripe"] })
  }, 240_000)

  beforeEach(async () => {
    await psp.reset()
    await fakeStripe.reset()
  })

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
    const first = () => apis[mode.failing]
    const next = () => apis[mode.next]

    describe.each(CONFIRMATIONS)("the shopper's confirmation: %s", (outcome) => {
      it.each(REMOVALS)("$name → 400 naming the session; the authorization is recorded; the intent is not canceled", async (removal) => {
        const amount = 1200
        const collection = await createPaymentCollection({ regionId: region.id, amount })
        const session = await sessionOn(first(), collection.id)
        await psp.confirmSession(session, outcome)

        const started = Date.now()
        const res = await removal.send(next(), collection.id, session, amount)
        const answeredMs = Date.now() - started

        expectRefusedNaming(res, session.id)
        // The authorization is in the database: session, payment, the collection's status.
        const sessions = await linkedSessions(collection.id)
        expect(sessions).toEqual([expect.objectContaining({ id: session.id, provider_id: "test-pay", status: "authorized", amount })])
        expect(sessions[0].payment_authorized_at).not.toBeNull()
        const payments = await linkedPayments(collection.id)
        expect(payments).toEqual([expect.objectContaining({ provider_id: "test-pay", amount, currency_code: "usd" })])
        expect(payments[0].data.id).toBe(session.data.id)
        expect(await collectionRow(collection.id)).toMatchObject({ status: "authorized", authorized_amount: amount })
        // The provider still holds the shopper's money: nothing was canceled or deleted.
        expect(await psp.intent(session.data.id)).toMatchObject({ status: outcome, amount })
        const calls = (await psp.state()).calls
        expect({ deletePayment: calls.deletePayment, cancelPayment: calls.cancelPayment, initiatePayment: calls.initiatePayment }).toEqual({
          deletePayment: 0,
          cancelPayment: 0,
          initiatePayment: 1,
        })
        expect(await agree(collection.id)).toBe(true)
        const { rows } = await waitForJournal(collection.id, "no open row", allClosed, started)
        expect(rows.filter((r) => r.operation === "status").map((r) => r.state)).toEqual(["committed"])
        timings.record(`${outcome}, ${removal.name} (${mode.name})`, "recorded when answered", answeredMs)

        // The storefront then authorizes: answered what is recorded, once.
        const authorize = await next().post(`${base(collection.id)}/sessions/${session.id}/authorize`)
        expect(authorize.status).toBe(200)
        expect(authorize.body.payment_session).toMatchObject({ id: session.id, status: "authorized" })
        expect(await linkedPayments(collection.id)).toHaveLength(1)
      })
    })

    it("a session not confirmed is removed as before: asked, then deleted at the provider", async () => {
      const collection = await createPaymentCollection({ regionId: region.id, amount: 1000 })
      const session = await sessionOn(first(), collection.id)

      const res = await next().post(`${base(collection.id)}/sessions`, { provider_id: "manual" })

      expect(res.status).toBe(200)
      expect((await linkedSessions(collection.id)).map((s) => s.provider_id)).toEqual(["manual"])
      const { rows } = await waitForJournal(collection.id, "no open row", allClosed, Date.now())
      expect(rows.filter((r) => r.operation === "status").map((r) => r.state)).toEqual(["committed"])
      expect(await psp.intent(session.data.id)).toMatchObject({ status: "canceled" })
      expect(await agree(collection.id)).toBe(true)
    })

    it.each([
      ["crashes", "throw", 502, "payment_provider_error"],
      ["does not answer", "hang", 504, "payment_provider_timeout"],
    ] as const)("a provider that %s when asked (fault %s) → %i, nothing removed; once it answers, the removal is made", async (_what, fail, status, code) => {
      const collection = await createPaymentCollection({ regionId: region.id, amount: 1000 })
      const session = await sessionOn(first(), collection.id)
      await psp.behaviour({ getPaymentStatus: { fail, times: 1, intentId: session.data.id } })

      const res = await next().post(`${base(collection.id)}/sessions`, { provider_id: "manual" })

      expect({ status: res.status, code: res.body.code }).toEqual({ status, code })
      expect((await linkedSessions(collection.id)).map((s) => [s.id, s.status])).toEqual([[session.id, "pending"]])
      expect(await psp.intent(session.data.id)).toMatchObject({ status: "pending" })
      expect((await psp.state()).calls.deletePayment).toBe(0)

      const again = await next().post(`${base(collection.id)}/sessions`, { provider_id: "manual" })
      expect(again.status).toBe(200)
      await waitForJournal(collection.id, "no open row", allClosed, Date.now())
      expect(await psp.intent(session.data.id)).toMatchObject({ status: "canceled" })
      expect(await agree(collection.id)).toBe(true)
    })

    describe("with the real medusa-payment-stripe", () => {
      it("a payment still processing (SEPA) → 400 naming the session, nothing recorded, the intent not canceled", async () => {
        const collection = await createPaymentCollection({ regionId: stripeRegion.id, amount: 2100 })
        const session = await sessionOn(first(), collection.id, "stripe")
        const confirmed = await fakeStripe.confirmSession(session, "processing")
        expect(confirmed.payment_intent.status).toBe("processing")

        const started = Date.now()
        const res = await next().post(`${base(collection.id)}/sessions`, { provider_id: "manual" })
        timings.record(`stripe processing, create for another provider (${mode.name})`, "answered", Date.now() - started)

        expectRefusedNaming(res, session.id)
        expect((await linkedSessions(collection.id)).map((s) => [s.id, s.status])).toEqual([[session.id, "pending"]])
        expect(await linkedPayments(collection.id)).toEqual([])
        expect(await fakeStripe.paymentIntent(session.data.id)).toMatchObject({ status: "processing", canceled_at: null })
        expect(await fakeStripe.history({ operation: "payment_intents.cancel" })).toEqual([])
        expect(await agree(collection.id, "stripe")).toBe(true)

        // Once the funds arrive, authorize records them.
        await fakeStripe.settle(session.data.id, "succeeded")
        const authorize = await next().post(`${base(collection.id)}/sessions/${session.id}/authorize`)
        expect(authorize.status).toBe(200)
        expect(authorize.body.payment_session).toMatchObject({ id: session.id, status: "authorized" })
        expect((await linkedPayments(collection.id)).map((p) => p.amount)).toEqual([2100])
      })

      it.each(REMOVALS)("a card authorization (requires_capture), $name → 400, recorded, the intent not canceled", async (removal) => {
        const amount = 2200
        const collection = await createPaymentCollection({ regionId: stripeRegion.id, amount })
        const session = await sessionOn(first(), collection.id, "stripe")
        await fakeStripe.confirmSession(session, "authorized")

        const started = Date.now()
        const res = await removal.send(next(), collection.id, session, amount)
        timings.record(`stripe requires_capture, ${removal.name} (${mode.name})`, "recorded when answered", Date.now() - started)

        expectRefusedNaming(res, session.id)
        expect((await linkedSessions(collection.id)).map((s) => [s.id, s.status])).toEqual([[session.id, "authorized"]])
        const payments = await linkedPayments(collection.id)
        expect(payments).toEqual([expect.objectContaining({ provider_id: "stripe", amount })])
        expect(payments[0].data).toMatchObject({ id: session.data.id, status: "requires_capture", amount_capturable: amount })
        expect(await collectionRow(collection.id)).toMatchObject({ status: "authorized", authorized_amount: amount })
        expect(await fakeStripe.paymentIntent(session.data.id)).toMatchObject({ status: "requires_capture", amount_capturable: amount })
        expect(await fakeStripe.history({ operation: "payment_intents.cancel" })).toEqual([])
        expect(await agree(collection.id, "stripe")).toBe(true)
      })
    })
  })
})
