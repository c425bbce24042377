import { api, createApi, HttpResponse } from "./helpers/http"
import { createPaymentCollection, createRegion, db } from "./helpers/factories"
import { startExtraBackend, stopExtraBackends } from "./helpers/backend"
import { psp, PspIntent } from "./helpers/fake-psp"
import { linkedSessions, sleep, waitFor } from "./helpers/payments"

// The test doubles the other specs rely on: the fake PSP (its own process,
// Stripe PaymentIntent semantics) and the three providers every backend runs
// against it. Part one calls the PSP's provider API the way the providers do;
// part two drives the providers through a real backend.

const base = (id: string) => `/store/payment-collections/${id}`

/** The PSP's provider API, called as provider `caller` would. */
function providerApi(caller = "spec-caller") {
  const http = createApi(psp.url, { "x-psp-caller": caller })
  return {
    create: (body: Record<string, unknown>) => http.post("/v1/intents", body),
    retrieve: (id: string) => http.get(`/v1/intents/${id}`),
    status: (id: string) => http.get(`/v1/intents/${id}/status`),
    update: (id: string, body: Record<string, unknown>) => http.post(`/v1/intents/${id}`, body),
    authorize: (id: string) => http.post(`/v1/intents/${id}/authorize`, {}),
    cancel: (id: string) => http.post(`/v1/intents/${id}/cancel`, {}),
    delete: (id: string) => http.delete(`/v1/intents/${id}`),
    capture: (id: string) => http.post(`/v1/intents/${id}/capture`, {}),
    refund: (id: string, amount: number) => http.post(`/v1/intents/${id}/refunds`, { amount }),
  }
}

const intentBody = (overrides: Record<string, unknown> = {}) => ({
  amount: 1000,
  currency_code: "usd",
  resource_id: "paycol_spec",
  ...overrides,
})

/** A provider call the PSP is expected never to answer: "no answer" once `waitMs` passed. */
function callExpectingNoAnswer(method: string, path: string, waitMs = 1000): Promise<string> {
  return fetch(psp.url + path, {
    method,
    headers: { "content-type": "application/json", "x-psp-caller": "spec-caller" },
    body: method === "GET" ? undefined : "{}",
    signal: AbortSignal.timeout(waitMs),
  }).then(
    () => "answered",
    () => "no answer"
  )
}

async function newIntent(caller?: string, overrides: Record<string, unknown> = {}): Promise<PspIntent> {
  const res = await providerApi(caller).create(intentBody(overrides))
  expect(res.status).toBe(200)
  return res.body
}

function expectPspError(res: HttpResponse, status: number, code: string) {
  expect({ status: res.status, code: res.body?.error?.code }).toEqual({ status, code })
  expect(typeof res.body.error.message).toBe("string")
}

describe("test doubles: the fake PSP and the providers backed by it", () => {
  beforeEach(() => psp.reset())

  afterAll(async () => {
    await stopExtraBackends()
    await db.end()
  }, 60_000)

  describe("the PSP's payment intents (Stripe PaymentIntent semantics)", () => {
    const pay = providerApi()

    it("create answers a pending pi_ intent with a client_secret, and keeps what the caller sent for inspection", async () => {
      const res = await pay.create(
        intentBody({ email: "shopper@pcp.test", customer: { id: "cus_1" }, context: { locale: "de" }, args: [{ raw: true }] })
      )

      expect(res.status).toBe(200)
      expect(res.body).toEqual({
        id: expect.stringMatching(/^pi_/),
        client_secret: expect.stringMatching(/^pi_.+_secret_/),
        status: "pending",
        amount: 1000,
        currency_code: "usd",
        resource_id: "paycol_spec",
        amount_captured: 0,
        amount_refunded: 0,
      })
      expect(await psp.intent(res.body.id)).toMatchObject({
        provider: "spec-caller",
        email: "shopper@pcp.test",
        customer: { id: "cus_1" },
        context: { locale: "de" },
      })
      const [call] = await psp.history({ method: "initiatePayment" })
      expect(call).toMatchObject({ provider: "spec-caller", intentId: res.body.id, resourceId: "paycol_spec", outcome: "ok" })
      expect(call.args).toEqual([{ raw: true }])
    })

    it("authorize only reads: pending until the shopper confirms, then authorized; requires_more when the shopper's bank asks for more", async () => {
      const intent = await newIntent()

      const before = await pay.authorize(intent.id)
      expect(before.body.status).toBe("pending")
      expect((await psp.intent(intent.id)).status).toBe("pending")

      await psp.confirm(intent.id, "requires_more")
      expect((await pay.authorize(intent.id)).body.status).toBe("requires_more")

      await psp.confirm(intent.id)
      expect((await pay.authorize(intent.id)).body.status).toBe("authorized")
      expect((await pay.authorize(intent.id)).body.status).toBe("authorized")
      expect((await psp.state()).calls.authorizePayment).toBe(4)
    })

    it("cancel is final: authorize, update and confirm of a canceled intent are errors; cancel and delete again succeed", async () => {
      const intent = await newIntent()
      await psp.confirm(intent.id)

      const canceled = await pay.cancel(intent.id)
      expect(canceled.status).toBe(200)
      expect(canceled.body.status).toBe("canceled")

      expectPspError(await pay.authorize(intent.id), 400, "payment_intent_unexpected_state")
      expectPspError(await pay.update(intent.id, { amount: 500 }), 400, "payment_intent_unexpected_state")
      const confirm = await createApi(psp.url).post(`/test/intents/${intent.id}/confirm`, {})
      expectPspError(confirm, 400, "payment_intent_unexpected_state")
      expect((await pay.cancel(intent.id)).body.status).toBe("canceled")
      expect((await pay.delete(intent.id)).body.status).toBe("canceled")
      expect(await psp.intent(intent.id)).toMatchObject({ status: "canceled", amount: 1000 })
      expect(await psp.liveIntents()).toEqual([])
    })

    it("delete cancels (as stripe-base's deletePayment), also an authorized intent: the hold is released", async () => {
      const intent = await newIntent()
      await psp.confirm(intent.id)

      const deleted = await pay.delete(intent.id)

      expect(deleted.status).toBe(200)
      expect((await psp.intent(intent.id)).status).toBe("canceled")
      expectPspError(await pay.authorize(intent.id), 400, "payment_intent_unexpected_state")
    })

    it("update changes the amount while pending or requires_more, and is an error once authorized", async () => {
      const intent = await newIntent()
      expect((await pay.update(intent.id, { amount: 700 })).body.amount).toBe(700)
      await psp.confirm(intent.id, "requires_more")
      expect((await pay.update(intent.id, { amount: 800 })).body.amount).toBe(800)
      await psp.confirm(intent.id)

      expectPspError(await pay.update(intent.id, { amount: 900 }), 400, "payment_intent_unexpected_state")
      expect((await psp.intent(intent.id)).amount).toBe(800)
    })

    it("capture needs an authorized intent, refund a captured one, and a captured intent cannot be canceled", async () => {
      const intent = await newIntent()
      expectPspError(await pay.capture(intent.id), 400, "payment_intent_unexpected_state")
      await psp.confirm(intent.id)

      expect((await pay.capture(intent.id)).body).toMatchObject({ status: "captured", amount_captured: 1000 })
      expect((await pay.refund(intent.id, 400)).body).toMatchObject({ amount_refunded: 400 })
      expectPspError(await pay.refund(intent.id, 601), 400, "invalid_request")
      expectPspError(await pay.cancel(intent.id), 400, "payment_intent_unexpected_state")
      expect((await pay.status(intent.id)).body.status).toBe("captured")
    })

    it("an unknown intent is a 404 resource_missing for every operation", async () => {
      for (const res of [
        await pay.retrieve("pi_missing"),
        await pay.authorize("pi_missing"),
        await pay.update("pi_missing", { amount: 1 }),
        await pay.cancel("pi_missing"),
        await pay.delete("pi_missing"),
      ]) {
        expectPspError(res, 404, "resource_missing")
      }
    })

    it("answers bad input to its own endpoints with 400 and a message, never a crash", async () => {
      const http = createApi(psp.url)
      expectPspError(await pay.create(intentBody({ amount: -1 })), 400, "invalid_request")
      expectPspError(await pay.create(intentBody({ amount: 10.5 })), 400, "invalid_request")
      expectPspError(await pay.create({ amount: 100 }), 400, "invalid_request")
      expectPspError(await http.raw("POST", "/v1/intents", "{"), 400, "invalid_request")
      expectPspError(await http.raw("POST", "/test/behaviours", "[1]"), 400, "invalid_request")
      expectPspError(await http.post("/test/behaviours", { chargeCard: {} }), 400, "invalid_request")
      expectPspError(await http.post("/test/behaviours", { initiatePayment: { fail: "explode" } }), 400, "invalid_request")
      expectPspError(await http.post("/test/behaviours", { initiatePayment: { times: 0 } }), 400, "invalid_request")
      expectPspError(await http.post("/test/behaviours", { initiatePayment: { delay: 5 } }), 400, "invalid_request")
      const intent = await newIntent()
      expectPspError(await http.post(`/test/intents/${intent.id}/confirm`, { outcome: "captured" }), 400, "invalid_request")
      expectPspError(await http.get("/test/intents?live=maybe"), 400, "invalid_request")
      expectPspError(await http.get("/test/history?method=chargeCard"), 400, "invalid_request")
      expectPspError(await http.get("/v1/nothing-here"), 404, "not_found")
      expectPspError(await http.raw("PUT", "/test/state"), 405, "method_not_allowed")
      expect((await psp.state()).behaviours).toEqual({})
      expect((await http.get("/health")).status).toBe(200)
    })
  })

  describe("the PSP's scripted behaviours, for calls from any backend", () => {
    it("refuse answers 402 card_declined naming the caller, throw a 500; times limits them to the next calls", async () => {
      await psp.behaviour({ initiatePayment: [{ fail: "refuse", times: 1 }, { fail: "throw", times: 1 }] })
      const pay = providerApi("test-pay")

      const refused = await pay.create(intentBody())
      expect(refused.status).toBe(402)
      expect(refused.body.error).toMatchObject({ code: "card_declined", message: "test-pay refused initiatePayment" })
      expect((await pay.create(intentBody())).status).toBe(500)
      expect((await pay.create(intentBody())).status).toBe(200)
      expect((await psp.state()).behaviours).toEqual({})
      expect((await psp.history({ method: "initiatePayment" })).map((h) => h.outcome)).toEqual(["refused", "threw", "ok"])
      expect(await psp.intents()).toHaveLength(1)
    })

    it("a rule scoped to a provider, an intent or a collection leaves other calls alone", async () => {
      const mine = await newIntent("test-pay", { resource_id: "paycol_a" })
      const other = await newIntent("test-pay", { resource_id: "paycol_b" })
      await psp.behaviour({
        authorizePayment: [{ fail: "refuse", intentId: mine.id }],
        updatePayment: [{ fail: "refuse", resourceId: "paycol_b" }],
        cancelPayment: [{ fail: "refuse", provider: "test-legacy" }],
      })

      expect((await providerApi("test-pay").authorize(mine.id)).status).toBe(402)
      expect((await providerApi("test-pay").authorize(other.id)).status).toBe(200)
      expect((await providerApi("test-pay").update(other.id, { amount: 5 })).status).toBe(402)
      expect((await providerApi("test-pay").update(mine.id, { amount: 5 })).status).toBe(200)
      expect((await providerApi("test-legacy").cancel(mine.id)).status).toBe(402)
      expect((await providerApi("test-pay").cancel(mine.id)).status).toBe(200)
    })

    it("delayMs before the effect: the intent exists only once the delay passed; in flight meanwhile", async () => {
      await psp.behaviour({ initiatePayment: { delayMs: 400 } })

      const pending = providerApi().create(intentBody())
      await waitFor("the call to arrive", async () => (await psp.state()).inflight.initiatePayment === 1)
      expect(await psp.intents()).toEqual([])
      const res = await pending

      expect(res.status).toBe(200)
      const state = await psp.state()
      expect(state.intents.map((i) => i.id)).toEqual([res.body.id])
      expect({ inflight: state.inflight.initiatePayment, max: state.maxInflight.initiatePayment }).toEqual({ inflight: 0, max: 1 })
    })

    it("afterEffect with hang: the effect is applied at once but the caller never gets the answer (the caller dies mid-call)", async () => {
      const intent = await newIntent()
      await psp.behaviour({ cancelPayment: { fail: "hang", afterEffect: true } })

      const answer = await callExpectingNoAnswer("POST", `/v1/intents/${intent.id}/cancel`)

      expect(answer).toBe("no answer")
      expect((await psp.intent(intent.id)).status).toBe("canceled")
      const [call] = await psp.history({ method: "cancelPayment" })
      expect(call.outcome).toBe("hung")
      expect((await psp.state()).inflight.cancelPayment).toBe(1)
    })

    it("afterEffect with delayMs: the effect is applied at once, the answer comes late", async () => {
      const intent = await newIntent()
      await psp.behaviour({ updatePayment: { delayMs: 600, afterEffect: true } })

      const late = providerApi().update(intent.id, { amount: 250 })
      await sleep(200)
      expect((await psp.intent(intent.id)).amount).toBe(250)
      const res = await late
      expect(res.status).toBe(200)
      expect(res.body.amount).toBe(250)
    })

    it("reset forgets intents, behaviours, counts and history; a call still open from before does not count after it", async () => {
      await newIntent()
      await psp.behaviour({ retrievePayment: { fail: "hang" } })
      const hung = callExpectingNoAnswer("GET", "/v1/intents/pi_anything", 3000)
      await waitFor("the hung call", async () => (await psp.state()).inflight.retrievePayment === 1)

      await psp.reset()

      const state = await psp.state()
      expect(state.intents).toEqual([])
      expect(state.behaviours).toEqual({})
      expect(state.calls.initiatePayment).toBe(0)
      expect(state.inflight.retrievePayment).toBe(0)
      expect(await psp.history()).toEqual([])
      expect(await hung).toBe("no answer")
      expect((await psp.state()).inflight.retrievePayment).toBe(0)
    })
  })

  describe.each(["test-pay", "test-fields", "test-legacy"])("provider %s through a real backend", (providerId) => {
    let regionId: string

    beforeAll(async () => {
      regionId = (await createRegion({ providers: ["manual", providerId] })).id
    })

    async function sessionOf(collectionId: string) {
      const res = await api.post(`${base(collectionId)}/sessions`, { provider_id: providerId })
      expect(res.status).toBe(200)
      return res.body.payment_collection.payment_sessions[0]
    }

    it("initiates an intent at the PSP: session data { id, amount, status, client_secret }, the input it received recorded", async () => {
      const collection = await createPaymentCollection({ regionId, amount: 1500 })

      const session = await sessionOf(collection.id)

      expect(session.data).toEqual({
        id: expect.stringMatching(/^pi_/),
        amount: 1500,
        status: "pending",
        client_secret: expect.stringMatching(/_secret_/),
      })
      const intent = await psp.intent(session.data.id)
      expect(intent).toMatchObject({ provider: providerId, resource_id: collection.id, amount: 1500, status: "pending" })
      const [call] = await psp.history({ method: "initiatePayment", provider: providerId })
      expect(call.args).toEqual([expect.objectContaining({ amount: 1500, resource_id: collection.id, currency_code: "usd" })])
    })

    it("authorizes only what the shopper confirmed: 422 before, 200 after, one payment holding the intent", async () => {
      const collection = await createPaymentCollection({ regionId, amount: 900 })
      const session = await sessionOf(collection.id)

      const early = await api.post(`${base(collection.id)}/sessions/${session.id}/authorize`)
      expect(early.status).toBe(422)
      expect(early.body.type).toBe("payment_authorization_error")

      await psp.confirmSession(session)
      const paid = await api.post(`${base(collection.id)}/sessions/${session.id}/authorize`)

      expect(paid.status).toBe(200)
      expect(paid.body.payment_session).toMatchObject({ status: "authorized", data: expect.objectContaining({ status: "authorized" }) })
      const { rows } = await db.query(
        `SELECT p.data FROM payment p JOIN payment_collection_payments pcp ON pcp.payment_id = p.id
          WHERE pcp.payment_collection_id = $1`,
        [collection.id]
      )
      expect(rows).toEqual([{ data: expect.objectContaining({ id: session.data.id, status: "authorized" }) }])
    })

    it("an amount change updates the intent; switching to manual cancels it at the PSP", async () => {
      const collection = await createPaymentCollection({ regionId, amount: 1000 })
      const session = await sessionOf(collection.id)

      const split = await api.post(`${base(collection.id)}/sessions/batch`, {
        sessions: [
          { provider_id: providerId, amount: 600, session_id: session.id },
          { provider_id: "manual", amount: 400 },
        ],
      })
      expect(split.status).toBe(200)
      expect(await psp.intent(session.data.id)).toMatchObject({ amount: 600, status: "pending" })

      const manual = await api.post(`${base(collection.id)}/sessions`, { provider_id: "manual" })

      expect(manual.status).toBe(200)
      expect(await psp.intent(session.data.id)).toMatchObject({ status: "canceled" })
      expect(await psp.liveIntents(collection.id)).toEqual([])
    })

    it("a refusal scripted for this provider only answers 400 for it, naming it", async () => {
      const collection = await createPaymentCollection({ regionId, amount: 800 })
      await psp.behaviour({ initiatePayment: { fail: "refuse", provider: providerId } })

      const refused = await api.post(`${base(collection.id)}/sessions`, { provider_id: providerId })

      expect(refused.status).toBe(400)
      expect(refused.body.type).toBe("invalid_data")
      expect(refused.body.message).toContain(`${providerId} refused initiatePayment`)
      expect(await linkedSessions(collection.id)).toEqual([])
      expect(await psp.intents()).toEqual([])
    })
  })

  it("the PSP keeps its intents when a backend that created them is killed, and another backend carries on with them", async () => {
    const region = await createRegion({ providers: ["manual", "test-pay"] })
    const collection = await createPaymentCollection({ regionId: region.id, amount: 1200 })
    const doomed = await startExtraBackend()
    const created = await createApi(doomed.url).post(`${base(collection.id)}/sessions`, { provider_id: "test-pay" })
    expect(created.status).toBe(200)
    const session = created.body.payment_collection.payment_sessions[0]

    process.kill(doomed.pid, "SIGKILL")
    await waitFor("the killed backend to stop answering", () =>
      fetch(`${doomed.url}/health`).then(
        () => false,
        () => true
      )
    )

    expect(await psp.liveIntents(collection.id)).toEqual([
      expect.objectContaining({ id: session.data.id, status: "pending", amount: 1200 }),
    ])
    const [call] = await psp.history({ method: "initiatePayment", resourceId: collection.id })
    expect(call.pid).toBe(doomed.pid)

    await psp.confirmSession(session)
    const paid = await api.post(`${base(collection.id)}/sessions/${session.id}/authorize`)
    expect(paid.status).toBe(200)
    expect(await psp.intent(session.data.id)).toMatchObject({ status: "authorized" })
  }, 180_000)
})
