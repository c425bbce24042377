import { api, createApi, HttpResponse } from "./helpers/http"
import { createPaymentCollection, createRegion, db } from "./helpers/factories"
import { startExtraBackend, stopExtraBackends } from "./helpers/backend"
import { FINDER_PROVIDERS, PSP_PROVIDERS, psp, PspIntent } from "./helpers/fake-psp"
import { linkedSessions, sleep, waitFor } from "./helpers/payments"

// The test doubles the other specs rely on: the fake PSP (its own process,
// Stripe PaymentIntent semantics) and the four providers every backend runs
// against it. Part one calls the PSP's provider API the way the providers do;
// part two drives the providers through a real backend: through the store API,
// and by calling the host's provider instances through the fixture's test-only
// routes (/test-providers/...).

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
    find: (query: FinderQuery) => http.get(finderPath(query)),
  }
}

type FinderQuery = { resource_id?: string; created_from?: number | string; created_to?: number | string }

function finderPath(query: FinderQuery): string {
  const search = new URLSearchParams()
  for (const [key, value] of Object.entries(query)) if (value !== undefined) search.set(key, String(value))
  return `/v1/intents?${search}`
}

/**
 * A provider call whose connection may be reset: "ECONNRESET" (or another
 * network error code) when the fetch fails, else "answered <status>".
 */
function callSeeingConnection(method: string, path: string, body?: unknown): Promise<string> {
  return fetch(psp.url + path, {
    method,
    headers: { "content-type": "application/json", "x-psp-caller": "spec-caller" },
    body: method === "GET" ? undefined : JSON.stringify(body ?? {}),
    signal: AbortSignal.timeout(10_000),
  }).then(
    (res) => `answered ${res.status}`,
    (err) => String(err?.cause?.code ?? err?.name)
  )
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

/** What a provider method of the backend's host answered, or threw (the fixture's /test-providers routes). */
type ProviderReport = {
  result?: any
  thrown?: { name: string; message: string; code: unknown; type: unknown; cause: { code: unknown; message: string } | null }
}

/** Calls the host's instance of provider `providerId` inside the main backend. */
function hostProvider(providerId: string) {
  const report = async (res: HttpResponse<ProviderReport>): Promise<ProviderReport> => {
    expect(res.status).toBe(200)
    return res.body
  }
  const call = async (method: string, args: unknown[]) =>
    report(await api.post(`/test-providers/${providerId}/call/${method}`, { args }))
  const legacy = providerId === "test-legacy"
  return {
    describe: () => api.get(`/test-providers/${providerId}`),
    find: async (query: { resource_id?: string; created_from?: number | string; created_to?: number | string }) =>
      report(await api.post(`/test-providers/${providerId}/find`, query)),
    // Each operation as core calls it: a processor with session data, the legacy service with sessions and payments.
    initiate: (context: Record<string, unknown>) => call(legacy ? "createPayment" : "initiatePayment", [context]),
    update: (data: Record<string, unknown>, context: Record<string, unknown>) =>
      call("updatePayment", legacy ? [data, context] : [{ ...context, paymentSessionData: data }]),
    authorize: (data: Record<string, unknown>) => call("authorizePayment", legacy ? [{ data }, {}] : [data, {}]),
    delete: (data: Record<string, unknown>) => call("deletePayment", [legacy ? { data } : data]),
    cancel: (data: Record<string, unknown>) => call("cancelPayment", [legacy ? { data } : data]),
    status: (data: Record<string, unknown>) => call(legacy ? "getStatus" : "getPaymentStatus", [data]),
  }
}

/** A provider's PSP refusal: a PaymentProcessorError value from a processor, an invalid_data MedusaError thrown by test-legacy. */
function expectRefusal(providerId: string, report: ProviderReport, code: string) {
  if (providerId === "test-legacy") {
    expect(report.thrown).toMatchObject({ type: "invalid_data", code })
  } else {
    expect(report.thrown).toBeUndefined()
    expect(report.result).toEqual({ error: expect.any(String), code, detail: expect.any(String) })
  }
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

    it("the shopper pays at once (automatic capture): captured with the whole amount, never canceled or deleted, refundable", async () => {
      const intent = await newIntent()

      const paid = await psp.confirm(intent.id, "captured")

      expect(paid).toMatchObject({ status: "captured", amount: 1000, amount_captured: 1000 })
      expect((await pay.authorize(intent.id)).body).toMatchObject({ status: "captured", amount_captured: 1000 })
      expectPspError(await pay.cancel(intent.id), 400, "payment_intent_unexpected_state")
      expectPspError(await pay.delete(intent.id), 400, "payment_intent_unexpected_state")
      expectPspError(await pay.update(intent.id, { amount: 500 }), 400, "payment_intent_unexpected_state")
      expectPspError(await pay.capture(intent.id), 400, "payment_intent_unexpected_state")
      expect((await pay.refund(intent.id, 1000)).body).toMatchObject({ amount_refunded: 1000 })
      expect(await psp.liveIntents()).toEqual([expect.objectContaining({ id: intent.id, status: "captured" })])
    })

    it("processing (SEPA: confirmed, funds on their way) refuses update, cancel, delete and capture; the funds arrive and it is captured", async () => {
      const intent = await newIntent()
      await psp.confirm(intent.id, "requires_more")

      expect((await psp.confirm(intent.id, "processing")).status).toBe("processing")

      expect((await pay.authorize(intent.id)).body.status).toBe("processing")
      expect((await pay.status(intent.id)).body.status).toBe("processing")
      expectPspError(await pay.update(intent.id, { amount: 500 }), 400, "payment_intent_unexpected_state")
      expectPspError(await pay.cancel(intent.id), 400, "payment_intent_unexpected_state")
      expectPspError(await pay.delete(intent.id), 400, "payment_intent_unexpected_state")
      expectPspError(await pay.capture(intent.id), 400, "payment_intent_unexpected_state")
      expectPspError(await createApi(psp.url).post(`/test/intents/${intent.id}/confirm`, {}), 400, "payment_intent_unexpected_state")
      expect(await psp.intent(intent.id)).toMatchObject({ status: "processing", amount: 1000, amount_captured: 0 })
      expect((await psp.history({ method: "cancelPayment" })).map((h) => h.outcome)).toEqual([
        "error:payment_intent_unexpected_state",
      ])

      expect(await psp.settle(intent.id, "captured")).toMatchObject({ status: "captured", amount_captured: 1000 })
      expectPspError(await pay.cancel(intent.id), 400, "payment_intent_unexpected_state")
    })

    it("processing whose funds fail goes back to pending: updatable, cancelable, and the shopper may confirm again", async () => {
      const intent = await newIntent()
      await psp.confirm(intent.id, "processing")

      expect(await psp.settle(intent.id, "failed")).toMatchObject({ status: "pending", amount_captured: 0 })

      expect((await pay.update(intent.id, { amount: 700 })).body).toMatchObject({ status: "pending", amount: 700 })
      expect((await psp.confirm(intent.id)).status).toBe("authorized")
      expect((await pay.cancel(intent.id)).body.status).toBe("canceled")
      expectPspError(await createApi(psp.url).post(`/test/intents/${intent.id}/settle`, { outcome: "failed" }), 400, "payment_intent_unexpected_state")
    })

    it("the shopper confirms a whole collection: every intent of it still waiting (of one provider when named), no other", async () => {
      const waiting = await newIntent("test-pay", { resource_id: "paycol_c" })
      const needsMore = await newIntent("test-legacy", { resource_id: "paycol_c" })
      await psp.confirm(needsMore.id, "requires_more")
      const done = await newIntent("test-pay", { resource_id: "paycol_c" })
      await psp.confirm(done.id)
      const canceled = await newIntent("test-pay", { resource_id: "paycol_c" })
      await pay.cancel(canceled.id)
      const elsewhere = await newIntent("test-pay", { resource_id: "paycol_other" })

      const onlyLegacy = await psp.confirmCollection("paycol_c", "processing", "test-legacy")
      expect(onlyLegacy.map((i) => [i.id, i.status])).toEqual([[needsMore.id, "processing"]])
      const confirmed = await psp.confirmCollection("paycol_c", "captured")

      expect(confirmed.map((i) => [i.id, i.status])).toEqual([[waiting.id, "captured"]])
      expect((await psp.intents({ resourceId: ["paycol_c", "paycol_other"] })).map((i) => [i.id, i.status])).toEqual([
        [waiting.id, "captured"],
        [needsMore.id, "processing"],
        [done.id, "authorized"],
        [canceled.id, "canceled"],
        [elsewhere.id, "pending"],
      ])
      expect(await psp.confirmCollection("paycol_c")).toEqual([])
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
      expectPspError(await http.post(`/test/intents/${intent.id}/confirm`, { outcome: "succeeded" }), 400, "invalid_request")
      expectPspError(await http.post(`/test/intents/${intent.id}/settle`, { outcome: "captured" }), 400, "payment_intent_unexpected_state")
      expectPspError(await http.post(`/test/intents/${intent.id}/settle`, { outcome: "lost" }), 400, "invalid_request")
      expectPspError(await http.post("/test/confirm", { outcome: "authorized" }), 400, "invalid_request")
      expectPspError(await http.post("/test/confirm", { resource_id: "paycol_spec", outcome: "paid" }), 400, "invalid_request")
      expectPspError(await http.post("/test/finder", { lagMs: -1 }), 400, "invalid_request")
      expectPspError(await http.post("/test/finder", { lag: 5 }), 400, "invalid_request")
      expectPspError(await http.post("/test/finder", { lagMs: 5, provider: "" }), 400, "invalid_request")
      expectPspError(await pay.find({ created_from: 0, created_to: 1 }), 400, "invalid_request")
      expectPspError(await pay.find({ resource_id: "paycol_spec", created_from: "yesterday", created_to: 1 }), 400, "invalid_request")
      expectPspError(await pay.find({ resource_id: "paycol_spec", created_from: 0 }), 400, "invalid_request")
      expectPspError(
        await http.get(finderPath({ resource_id: "paycol_spec", created_from: 0, created_to: 1 }), { headers: { "x-psp-args": "%%%" } }),
        400,
        "invalid_request"
      )
      expectPspError(await http.get("/test/intents?live=maybe"), 400, "invalid_request")
      expectPspError(await http.get("/test/history?method=chargeCard"), 400, "invalid_request")
      expectPspError(await http.get("/v1/nothing-here"), 404, "not_found")
      expectPspError(await http.raw("PUT", "/test/state"), 405, "method_not_allowed")
      expect((await psp.state()).behaviours).toEqual({})
      expect((await psp.state()).finder).toEqual({ lagMs: 0, byProvider: {} })
      expect((await psp.intent(intent.id)).status).toBe("pending")
      expect((await http.get("/health")).status).toBe(200)
    })
  })

  describe("the PSP's finder (Stripe's search on the collection id)", () => {
    const pay = providerApi("test-pay")

    /** Intents of one collection created a few milliseconds apart, with their creation times at the PSP. */
    async function intentsCreatedApart(resourceId: string, count: number): Promise<PspIntent[]> {
      const created: PspIntent[] = []
      for (let i = 0; i < count; i++) {
        if (i) await sleep(5)
        created.push(await psp.intent((await newIntent("test-pay", { resource_id: resourceId })).id))
      }
      return created
    }

    it("lists a collection's intents created within the window, whatever their status or provider, oldest first, complete without lag", async () => {
      const [a, b] = await intentsCreatedApart("paycol_f", 2)
      const fromLegacy = await newIntent("test-legacy", { resource_id: "paycol_f", amount: 300 })
      await newIntent("test-pay", { resource_id: "paycol_other" })
      await pay.cancel(a.id)
      await psp.confirm(b.id)

      const res = await pay.find({ resource_id: "paycol_f", created_from: a.created_at, created_to: Date.now() })

      expect(res.status).toBe(200)
      expect(res.body).toEqual({
        object: "list",
        data: [
          expect.objectContaining({ id: a.id, status: "canceled", client_secret: a.client_secret, resource_id: "paycol_f" }),
          expect.objectContaining({ id: b.id, status: "authorized" }),
          expect.objectContaining({ id: fromLegacy.id, status: "pending", amount: 300 }),
        ],
        complete: true,
      })
      expect(Object.keys(res.body.data[0]).sort()).toEqual(Object.keys(fromLegacy).sort())
    })

    it("the window is inclusive to the millisecond, in ISO dates or epoch ms; a window reaching past now is not complete", async () => {
      const [a, b, c] = await intentsCreatedApart("paycol_w", 3)
      const ids = async (query: FinderQuery) => {
        const res = await pay.find({ resource_id: "paycol_w", ...query })
        expect(res.status).toBe(200)
        return { ids: res.body.data.map((i: PspIntent) => i.id), complete: res.body.complete }
      }

      expect(await ids({ created_from: a.created_at, created_to: c.created_at })).toEqual({ ids: [a.id, b.id, c.id], complete: true })
      expect(await ids({ created_from: a.created_at + 1, created_to: c.created_at - 1 })).toEqual({ ids: [b.id], complete: true })
      expect(
        await ids({ created_from: new Date(b.created_at).toISOString(), created_to: new Date(b.created_at).toISOString() })
      ).toEqual({ ids: [b.id], complete: true })
      expect(await ids({ created_from: c.created_at, created_to: a.created_at })).toEqual({ ids: [], complete: true })
      expect(await ids({ created_from: a.created_at, created_to: Date.now() + 60_000 })).toEqual({
        ids: [a.id, b.id, c.id],
        complete: false,
      })
    })

    it("with a lag, an intent shows only lagMs after its creation, and the answer is incomplete while the window's end is younger than the lag", async () => {
      const LAG = 1000
      expect(await psp.finderLag(LAG)).toEqual({ lagMs: LAG, byProvider: {} })
      const [intent] = await intentsCreatedApart("paycol_lag", 1)
      const find = async (to: number) => (await pay.find({ resource_id: "paycol_lag", created_from: intent.created_at - 5000, created_to: to })).body

      expect(await find(intent.created_at)).toEqual({ object: "list", data: [], complete: false })
      expect(await find(Date.now())).toMatchObject({ data: [], complete: false })
      expect(await find(intent.created_at - 1)).toMatchObject({ data: [], complete: false })

      await sleep(intent.created_at + LAG + 50 - Date.now())
      expect(await find(intent.created_at)).toMatchObject({ data: [expect.objectContaining({ id: intent.id })], complete: true })
      expect(await find(intent.created_at - 1)).toMatchObject({ data: [], complete: true })
      expect(await find(Date.now())).toMatchObject({ data: [expect.objectContaining({ id: intent.id })], complete: false })
      await pay.cancel(intent.id)
      expect(await find(intent.created_at)).toMatchObject({ data: [expect.objectContaining({ status: "canceled" })], complete: true })
    })

    it("a lag set for one provider id applies to that caller only; reset clears it", async () => {
      await psp.finderLag(60_000, "test-legacy")
      const [intent] = await intentsCreatedApart("paycol_lag1", 1)
      const query = { resource_id: "paycol_lag1", created_from: intent.created_at, created_to: intent.created_at }

      expect((await providerApi("test-legacy").find(query)).body).toMatchObject({ data: [], complete: false })
      expect((await providerApi("test-pay").find(query)).body).toMatchObject({ data: [{ id: intent.id }], complete: true })
      expect((await psp.state()).finder).toEqual({ lagMs: 0, byProvider: { "test-legacy": 60_000 } })

      await psp.reset()
      expect((await psp.state()).finder).toEqual({ lagMs: 0, byProvider: {} })
    })

    it("is counted and recorded like every operation, and scripted like every operation: refuse, throw, reset, delay, hang", async () => {
      const [intent] = await intentsCreatedApart("paycol_fb", 1)
      const path = finderPath({ resource_id: "paycol_fb", created_from: intent.created_at, created_to: intent.created_at })
      await psp.behaviour({
        findPaymentSessions: [
          { fail: "refuse", times: 1, resourceId: "paycol_fb" },
          { fail: "throw", times: 1 },
          { fail: "reset", times: 1 },
          { delayMs: 400, times: 1 },
          { fail: "hang", times: 1 },
        ],
      })

      expectPspError(await pay.find({ resource_id: "paycol_fb", created_from: 0, created_to: 1 }), 402, "card_declined")
      expect((await pay.find({ resource_id: "paycol_fb", created_from: 0, created_to: 1 })).status).toBe(500)
      expect(await callSeeingConnection("GET", path)).toBe("ECONNRESET")
      const started = Date.now()
      const late = await pay.find({ resource_id: "paycol_fb", created_from: intent.created_at, created_to: intent.created_at })
      expect(Date.now() - started).toBeGreaterThanOrEqual(400)
      expect(late.body.data.map((i: PspIntent) => i.id)).toEqual([intent.id])
      expect(await callExpectingNoAnswer("GET", path)).toBe("no answer")

      const state = await psp.state()
      expect({ calls: state.calls.findPaymentSessions, inflight: state.inflight.findPaymentSessions }).toEqual({ calls: 5, inflight: 1 })
      expect(state.callsByProvider["test-pay"].findPaymentSessions).toBe(3)
      const history = await psp.history({ method: "findPaymentSessions", resourceId: "paycol_fb" })
      expect(history.map((h) => h.outcome)).toEqual(["refused", "threw", "reset", "ok", "hung"])
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

    it("reset before the effect: the caller's connection is reset (ECONNRESET), no answer, nothing done", async () => {
      const intent = await newIntent()
      await psp.behaviour({ updatePayment: { fail: "reset", times: 1 }, initiatePayment: { fail: "reset", times: 1 } })

      expect(await callSeeingConnection("POST", `/v1/intents/${intent.id}`, { amount: 300 })).toBe("ECONNRESET")
      expect(await callSeeingConnection("POST", "/v1/intents", intentBody({ resource_id: "paycol_r" }))).toBe("ECONNRESET")

      expect((await psp.intent(intent.id)).amount).toBe(1000)
      expect(await psp.intents({ resourceId: "paycol_r" })).toEqual([])
      expect((await psp.history()).map((h) => [h.method, h.outcome])).toEqual([
        ["initiatePayment", "ok"],
        ["updatePayment", "reset"],
        ["initiatePayment", "reset"],
      ])
      expect((await psp.state()).inflight).toMatchObject({ initiatePayment: 0, updatePayment: 0 })
    })

    describe.each([
      ["throw", "answered 500", "threw"],
      ["reset", "ECONNRESET", "reset"],
    ] as const)("act, then fail with %s: the effect is applied, the caller sees %s", (fail, seen, outcome) => {
      it("initiate: the intent exists, and the history names it", async () => {
        await psp.behaviour({ initiatePayment: { fail, afterEffect: true, times: 1 } })

        expect(await callSeeingConnection("POST", "/v1/intents", intentBody({ resource_id: "paycol_ae" }))).toBe(seen)

        const [intent] = await psp.intents({ resourceId: "paycol_ae" })
        expect(intent).toMatchObject({ status: "pending", amount: 1000 })
        const [call] = await psp.history({ method: "initiatePayment" })
        expect(call).toMatchObject({ outcome, intentId: intent.id, resourceId: "paycol_ae" })
      })

      it("update: the amount changed", async () => {
        const intent = await newIntent()
        await psp.behaviour({ updatePayment: { fail, afterEffect: true, times: 1 } })

        expect(await callSeeingConnection("POST", `/v1/intents/${intent.id}`, { amount: 600 })).toBe(seen)

        expect((await psp.intent(intent.id)).amount).toBe(600)
        expect((await psp.history({ method: "updatePayment" }))[0].outcome).toBe(outcome)
      })

      it("authorize: the status was read (the shopper's authorization stands)", async () => {
        const intent = await newIntent()
        await psp.confirm(intent.id)
        await psp.behaviour({ authorizePayment: { fail, afterEffect: true, times: 1 } })

        expect(await callSeeingConnection("POST", `/v1/intents/${intent.id}/authorize`)).toBe(seen)

        expect((await psp.intent(intent.id)).status).toBe("authorized")
        expect((await psp.history({ method: "authorizePayment" }))[0]).toMatchObject({ outcome, intentId: intent.id })
      })

      it("delete: the intent is canceled", async () => {
        const intent = await newIntent()
        await psp.confirm(intent.id)
        await psp.behaviour({ deletePayment: { fail, afterEffect: true, times: 1 } })

        expect(await callSeeingConnection("DELETE", `/v1/intents/${intent.id}`)).toBe(seen)

        expect((await psp.intent(intent.id)).status).toBe("canceled")
        expect((await psp.history({ method: "deletePayment" }))[0].outcome).toBe(outcome)
        expect(await psp.liveIntents()).toEqual([])
      })
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

  describe.each([...PSP_PROVIDERS])("provider %s through a real backend", (providerId) => {
    let regionId: string
    const host = hostProvider(providerId)
    const hasFinder = (FINDER_PROVIDERS as readonly string[]).includes(providerId)

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

    it("authorizes a payment the shopper made at once (automatic capture), and one that was processing once its funds arrived", async () => {
      const collection = await createPaymentCollection({ regionId, amount: 700 })
      const session = await sessionOf(collection.id)
      const authorize = () => api.post(`${base(collection.id)}/sessions/${session.id}/authorize`)

      await psp.confirmSession(session, "processing")
      const processing = await authorize()
      expect(processing.status).toBe(422)
      expect(processing.body.type).toBe("payment_authorization_error")

      await psp.settle(session.data.id, "captured")
      const paid = await authorize()
      expect(paid.status).toBe(200)
      expect(paid.body.payment_session).toMatchObject({ status: "authorized", data: expect.objectContaining({ status: "captured" }) })

      const other = await createPaymentCollection({ regionId, amount: 500 })
      const atOnce = await sessionOf(other.id)
      await psp.confirmSession(atOnce, "captured")
      const paidAtOnce = await api.post(`${base(other.id)}/sessions/${atOnce.id}/authorize`)
      expect(paidAtOnce.status).toBe(200)
      expect(paidAtOnce.body.payment_session.status).toBe("authorized")
    })

    it("maps a processing intent as medusa-payment-stripe does (pending), and answers a refusal to its cancel and delete", async () => {
      const created = await host.initiate({ amount: 800, currency_code: "usd", resource_id: "paycol_proc" })
      const data = created.result.session_data
      await psp.confirm(data.id, "processing")

      expect((await host.status(data)).result).toBe("pending")
      expect((await host.authorize(data)).result).toEqual({ status: "pending", data: { ...data, status: "processing" } })
      expectRefusal(providerId, await host.delete(data), "payment_intent_unexpected_state")
      expectRefusal(providerId, await host.cancel(data), "payment_intent_unexpected_state")
      expect((await psp.intent(data.id)).status).toBe("processing")
      const [statusCall] = await psp.history({ method: "getPaymentStatus", provider: providerId })
      expect(statusCall.args).toEqual([data])

      await psp.settle(data.id, "captured")
      expect((await host.status(data)).result).toBe("authorized")
      expect((await host.authorize(data)).result).toMatchObject({ status: "authorized", data: { status: "captured" } })
    })

    it.each(["throw", "reset"] as const)(
      "acts, then fails with %s: initiate, update, authorize and delete take effect at the PSP and the provider throws",
      async (fail) => {
        const context = { amount: 1000, currency_code: "usd", resource_id: `paycol_act_${fail}` }
        const expectThrown = (report: ProviderReport) => {
          expect(report.result).toBeUndefined()
          if (fail === "reset") expect(report.thrown?.cause?.code).toBe("ECONNRESET")
          else expect(report.thrown?.message).toContain("answered")
        }
        const afterEffect = { fail, afterEffect: true, times: 1, provider: providerId }
        await psp.behaviour({
          initiatePayment: afterEffect,
          updatePayment: afterEffect,
          authorizePayment: afterEffect,
          deletePayment: afterEffect,
        })

        expectThrown(await host.initiate(context))
        const [intent] = await psp.intents({ resourceId: context.resource_id })
        expect(intent).toMatchObject({ provider: providerId, status: "pending", amount: 1000 })
        const data = { id: intent.id, amount: intent.amount, status: intent.status, client_secret: intent.client_secret }

        expectThrown(await host.update(data, { ...context, amount: 600 }))
        expect((await psp.intent(intent.id)).amount).toBe(600)

        await psp.confirm(intent.id)
        expectThrown(await host.authorize(data))
        expect((await psp.intent(intent.id)).status).toBe("authorized")

        expectThrown(await host.delete(data))
        expect((await psp.intent(intent.id)).status).toBe("canceled")

        const outcome = fail === "reset" ? "reset" : "threw"
        expect((await psp.history({ intentId: intent.id })).map((h) => [h.method, h.outcome])).toEqual([
          ["initiatePayment", outcome],
          ["updatePayment", outcome],
          ["authorizePayment", outcome],
          ["deletePayment", outcome],
        ])
        expect((await host.status(data)).result).toBe("canceled")
      }
    )

    if (hasFinder) {
      it("has the finder on the host's instance: this collection's sessions in the window, canceled ones too, each with the data initiatePayment answered", async () => {
        const collection = await createPaymentCollection({ regionId, amount: 1100 })
        const from = Date.now()
        const session = await sessionOf(collection.id)
        const replaced = await host.initiate({ amount: 400, currency_code: "usd", resource_id: collection.id })
        const replacedData = replaced.result.session_data
        expect((await host.cancel(replacedData)).thrown).toBeUndefined()
        await host.initiate({ amount: 400, currency_code: "usd", resource_id: "paycol_someone_else" })
        const to = Date.now()

        const found = await host.find({ resource_id: collection.id, created_from: from, created_to: to })

        expect(found).toEqual({
          result: {
            sessions: [
              { id: session.data.id, data: session.data },
              { id: replacedData.id, data: { ...replacedData, status: "canceled" } },
            ],
            complete: true,
          },
        })
        const call = (await psp.history({ method: "findPaymentSessions", provider: providerId })).at(-1)
        expect(call).toMatchObject({ resourceId: collection.id, outcome: "ok" })
        expect(call?.args).toEqual([
          { resource_id: collection.id, created_from: new Date(from).toISOString(), created_to: new Date(to).toISOString() },
        ])
        expect((await host.describe()).body).toMatchObject({ has_finder: true, finder_in_object: true })
      })

      it("the finder answers complete: false under a lag, and throws on a refusal, a crash, a reset and a query without Dates", async () => {
        const created = await host.initiate({ amount: 500, currency_code: "usd", resource_id: "paycol_flag" })
        const intent = await psp.intent(created.result.session_data.id)
        const query = { resource_id: "paycol_flag", created_from: intent.created_at, created_to: intent.created_at }
        await psp.finderLag(60_000, providerId)

        expect(await host.find(query)).toEqual({ result: { sessions: [], complete: false } })

        await psp.finderLag(0, providerId)
        await psp.behaviour({
          findPaymentSessions: [
            { fail: "refuse", times: 1, provider: providerId },
            { fail: "throw", times: 1, provider: providerId },
            { fail: "reset", times: 1, provider: providerId },
          ],
        })
        const refused = (await host.find(query)).thrown
        expect(refused).toMatchObject({ code: "card_declined", message: expect.stringContaining(`${providerId} refused findPaymentSessions`) })
        if (providerId === "test-legacy") expect(refused?.type).toBe("invalid_data")
        expect((await host.find(query)).thrown?.message).toContain("answered GET")
        expect((await host.find(query)).thrown?.cause?.code).toBe("ECONNRESET")
        expect((await host.find({ ...query, created_to: "not a date" })).thrown).toMatchObject({ name: "TypeError" })
        expect((await host.find({ ...query, resource_id: "" })).thrown).toMatchObject({ name: "TypeError" })
        expect(await host.find(query)).toEqual({
          result: { sessions: [{ id: intent.id, data: created.result.session_data }], complete: true },
        })
        expect((await psp.history({ method: "findPaymentSessions" })).map((h) => h.outcome)).toEqual([
          "ok",
          "refused",
          "threw",
          "reset",
          "ok",
        ])
      })
    } else {
      it("has no finder at all: the host's instance has no findPaymentSessions, and the PSP never sees a finder call from it", async () => {
        const described = await host.describe()

        expect(described.status).toBe(200)
        expect(described.body).toEqual({ id: providerId, class_name: expect.any(String), has_finder: false, finder_in_object: false })
        const find = await api.post(`/test-providers/${providerId}/find`, { resource_id: "paycol_x", created_from: 0, created_to: 1 })
        expect(find.status).toBe(404)
        expect((await psp.state()).calls.findPaymentSessions).toBe(0)
      })
    }
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
