import http from "http"
import type Stripe from "stripe"
import { fakeStripe, StripeEvent } from "./helpers/fake-stripe"
import { sleep, waitFor } from "./helpers/payments"

// The fake Stripe API the real medusa-payment-stripe runs against, driven here by
// stripe-node itself (the very module medusa-payment-stripe loads): a fake kinder
// than Stripe would hide bugs, so each rule below is Stripe's, with Stripe's
// error (type, code, status) as stripe-node surfaces it.

/** The error a stripe-node call rejects with. */
async function stripeError(call: Promise<unknown>): Promise<any> {
  try {
    await call
  } catch (err) {
    return err
  }
  throw new Error("the call succeeded; a Stripe error was expected")
}

describe("fake Stripe API, driven by stripe-node 11 (medusa-payment-stripe's client)", () => {
  let stripe: Stripe

  beforeAll(() => {
    stripe = fakeStripe.client()
  })

  beforeEach(() => fakeStripe.reset())

  const createIntent = (params: Partial<Stripe.PaymentIntentCreateParams> = {}, options?: Stripe.RequestOptions) =>
    stripe.paymentIntents.create({ amount: 1500, currency: "usd", capture_method: "manual", ...params }, options)

  describe("PaymentIntents: create and retrieve", () => {
    it("creates from stripe-node's form encoding and answers Stripe's object", async () => {
      const customer = await stripe.customers.create({ email: "shopper@example.com" })

      const intent = await createIntent({
        customer: customer.id,
        metadata: { resource_id: "paycol_01FAKE" },
        description: "Two more mugs",
        setup_future_usage: "off_session",
      })

      expect(intent).toMatchObject({
        id: expect.stringMatching(/^pi_\w{24}$/),
        object: "payment_intent",
        amount: 1500,
        amount_capturable: 0,
        amount_received: 0,
        currency: "usd",
        capture_method: "manual",
        customer: customer.id,
        description: "Two more mugs",
        metadata: { resource_id: "paycol_01FAKE" },
        payment_method_types: ["card"],
        setup_future_usage: "off_session",
        status: "requires_payment_method",
        livemode: false,
        latest_charge: null,
      })
      expect(intent.client_secret).toMatch(new RegExp(`^${intent.id}_secret_\\w+$`))
      expect(await stripe.paymentIntents.retrieve(intent.id)).toEqual(intent)
      const expanded = await stripe.paymentIntents.retrieve(intent.id, { expand: ["customer"] })
      expect(expanded.customer).toMatchObject({ id: customer.id, object: "customer", email: "shopper@example.com" })

      const [call] = await fakeStripe.history({ operation: "payment_intents.create" })
      expect(call).toMatchObject({
        method: "POST",
        path: "/v1/payment_intents",
        // stripe-node sends strings in bracket notation: metadata[resource_id]=…
        params: expect.objectContaining({ amount: "1500", metadata: { resource_id: "paycol_01FAKE" } }),
        stripe_version: "2022-11-15",
        object_id: intent.id,
        resource_id: "paycol_01FAKE",
        status: 200,
        outcome: "ok",
      })
    })

    it.each<[string, Record<string, unknown>, number, string | null, string]>([
      ["no amount", { currency: "usd" }, 400, "parameter_missing", "amount"],
      ["an amount under Stripe's minimum", { amount: 49, currency: "usd" }, 400, "amount_too_small", "amount"],
      ["a parameter Stripe does not know", { amount: 500, currency: "usd", colour: "red" }, 400, "parameter_unknown", "colour"],
      ["a customer Stripe does not have", { amount: 500, currency: "usd", customer: "cus_missing" }, 404, "resource_missing", "customer"],
      [
        "both automatic_payment_methods and payment_method_types",
        { amount: 500, currency: "usd", automatic_payment_methods: { enabled: true }, payment_method_types: ["card"] },
        400,
        null,
        "automatic_payment_methods",
      ],
    ])("refuses %s as Stripe does", async (_name, params, status, code, param) => {
      const err = await stripeError(stripe.paymentIntents.create(params as any))

      expect(err).toBeInstanceOf(stripe.errors.StripeInvalidRequestError)
      expect(err).toMatchObject({ statusCode: status, param })
      if (code) expect(err.code).toBe(code)
      expect((await fakeStripe.state()).payment_intents).toEqual([])
    })
  })

  describe("PaymentIntents: update only before confirmation", () => {
    it("changes the amount while requires_payment_method, refuses it once the card is held, keeps metadata editable", async () => {
      const intent = await createIntent()
      expect((await stripe.paymentIntents.update(intent.id, { amount: 2000 })).amount).toBe(2000)
      await fakeStripe.confirm(intent.client_secret!)

      const err = await stripeError(stripe.paymentIntents.update(intent.id, { amount: 2500 }))

      expect(err).toBeInstanceOf(stripe.errors.StripeInvalidRequestError)
      expect(err).toMatchObject({ statusCode: 400, code: "payment_intent_unexpected_state" })
      // Stripe attaches the intent; medusa-payment-stripe reads error.payment_intent.status.
      expect(err.payment_intent).toMatchObject({ id: intent.id, status: "requires_capture", amount: 2000 })
      expect(await fakeStripe.paymentIntent(intent.id)).toMatchObject({ amount: 2000, status: "requires_capture" })
      const tagged = await stripe.paymentIntents.update(intent.id, { metadata: { note: "kept" } })
      expect(tagged).toMatchObject({ status: "requires_capture", metadata: { note: "kept" } })
    })

    it("a new amount during 3-D Secure voids the challenge: requires_confirmation, confirmed again", async () => {
      const intent = await createIntent()
      expect((await fakeStripe.confirm(intent.client_secret!, "requires_action")).payment_intent.status).toBe("requires_action")

      const updated = await stripe.paymentIntents.update(intent.id, { amount: 1700 })

      expect(updated).toMatchObject({ status: "requires_confirmation", amount: 1700, next_action: null })
      expect((await fakeStripe.confirm(intent.client_secret!)).payment_intent).toMatchObject({
        status: "requires_capture",
        amount_capturable: 1700,
      })
    })
  })

  describe("the shopper's confirmation (Stripe.js, test endpoint)", () => {
    it("holds the card with manual capture, charges it with automatic capture", async () => {
      const manual = await createIntent()
      const automatic = await createIntent({ capture_method: "automatic" })

      expect((await fakeStripe.confirm(manual.client_secret!)).payment_intent).toMatchObject({
        status: "requires_capture",
        amount_capturable: 1500,
        amount_received: 0,
        latest_charge: expect.stringMatching(/^ch_/),
      })
      expect((await fakeStripe.confirm(automatic.client_secret!)).payment_intent).toMatchObject({
        status: "succeeded",
        amount_capturable: 0,
        amount_received: 1500,
      })
    })

    it("3-D Secure: requires_action until the shopper completes it", async () => {
      const intent = await createIntent()
      const challenged = await fakeStripe.confirm(intent.client_secret!, "requires_action")
      expect(challenged.payment_intent).toMatchObject({ status: "requires_action", next_action: { type: "use_stripe_sdk" } })

      const completed = await fakeStripe.confirm(intent.client_secret!, "authorized")

      expect(completed.payment_intent).toMatchObject({ status: "requires_capture", next_action: null })
    })

    it("a declined card goes back to requires_payment_method with last_payment_error, and can be retried", async () => {
      const intent = await createIntent()

      const declined = await fakeStripe.confirm(intent.client_secret!, "declined")

      expect(declined.error).toMatchObject({ type: "card_error", code: "card_declined", decline_code: "generic_decline" })
      expect(declined.payment_intent).toMatchObject({
        status: "requires_payment_method",
        payment_method: null,
        last_payment_error: expect.objectContaining({ code: "card_declined" }),
      })
      expect((await fakeStripe.confirm(intent.client_secret!)).payment_intent).toMatchObject({
        status: "requires_capture",
        last_payment_error: null,
      })
    })

    it("processing settles later: succeeded, or failed back to requires_payment_method", async () => {
      const good = await createIntent({ capture_method: "automatic" })
      const bad = await createIntent({ capture_method: "automatic" })
      expect((await fakeStripe.confirm(good.client_secret!, "processing")).payment_intent.status).toBe("processing")
      await fakeStripe.confirm(bad.client_secret!, "processing")

      expect(await fakeStripe.settle(good.id, "succeeded")).toMatchObject({ status: "succeeded", amount_received: 1500 })
      expect(await fakeStripe.settle(bad.id, "failed")).toMatchObject({
        status: "requires_payment_method",
        last_payment_error: expect.objectContaining({ code: "payment_method_provider_decline" }),
      })
      expect((await fakeStripe.events({ objectId: bad.id })).map((e) => e.type)).toEqual([
        "payment_intent.created",
        "payment_intent.processing",
        "payment_intent.payment_failed",
      ])
    })

    it("needs the intent's own client secret", async () => {
      const intent = await createIntent()

      await expect(fakeStripe.confirm(`${intent.id}_secret_wrong`)).rejects.toThrow(/404/)
      expect((await fakeStripe.paymentIntent(intent.id)).status).toBe("requires_payment_method")
    })
  })

  describe("capture: once, from requires_capture, up to amount_capturable", () => {
    it("refuses a capture before the shopper confirmed", async () => {
      const intent = await createIntent()

      const err = await stripeError(stripe.paymentIntents.capture(intent.id))

      expect(err).toMatchObject({ statusCode: 400, code: "payment_intent_unexpected_state" })
      expect(err.payment_intent.status).toBe("requires_payment_method")
    })

    it("refuses more than the hold, captures part of it, and refuses a second capture", async () => {
      const intent = await createIntent()
      await fakeStripe.confirm(intent.client_secret!)
      const tooMuch = await stripeError(stripe.paymentIntents.capture(intent.id, { amount_to_capture: 1501 }))
      expect(tooMuch).toMatchObject({ statusCode: 400, code: "amount_too_large", param: "amount_to_capture" })

      const captured = await stripe.paymentIntents.capture(intent.id, { amount_to_capture: 1200 })

      expect(captured).toMatchObject({ status: "succeeded", amount_received: 1200, amount_capturable: 0 })
      const again = await stripeError(stripe.paymentIntents.capture(intent.id))
      expect(again).toMatchObject({ statusCode: 400, code: "payment_intent_unexpected_state" })
      // medusa-payment-stripe treats this error with a succeeded intent as "already captured".
      expect(again.payment_intent).toMatchObject({ id: intent.id, status: "succeeded" })
    })
  })

  describe("cancel is final", () => {
    it("a canceled intent cannot be confirmed, captured, updated or canceled again", async () => {
      const intent = await createIntent()
      expect(await stripe.paymentIntents.cancel(intent.id, { cancellation_reason: "abandoned" })).toMatchObject({
        status: "canceled",
        cancellation_reason: "abandoned",
        canceled_at: expect.any(Number),
      })

      await expect(fakeStripe.confirm(intent.client_secret!)).rejects.toThrow(/payment_intent_unexpected_state/)
      expect(await stripeError(stripe.paymentIntents.capture(intent.id))).toMatchObject({ code: "payment_intent_unexpected_state" })
      expect(await stripeError(stripe.paymentIntents.update(intent.id, { amount: 900 }))).toMatchObject({
        code: "payment_intent_unexpected_state",
      })
      const twice = await stripeError(stripe.paymentIntents.cancel(intent.id))
      expect(twice).toMatchObject({ statusCode: 400, code: "payment_intent_unexpected_state" })
      // medusa-payment-stripe treats this error with a canceled intent as "already canceled".
      expect(twice.payment_intent.status).toBe("canceled")
    })

    it("releases a hold; refuses to cancel a succeeded or processing intent", async () => {
      const held = await createIntent()
      await fakeStripe.confirm(held.client_secret!)
      const paid = await createIntent({ capture_method: "automatic" })
      await fakeStripe.confirm(paid.client_secret!)
      const pending = await createIntent({ capture_method: "automatic" })
      await fakeStripe.confirm(pending.client_secret!, "processing")

      expect(await stripe.paymentIntents.cancel(held.id)).toMatchObject({ status: "canceled", amount_capturable: 0 })
      const charge = (await stripe.paymentIntents.retrieve(held.id, { expand: ["latest_charge"] })).latest_charge as Stripe.Charge
      expect(charge).toMatchObject({ captured: false, refunded: true, amount_refunded: 1500 })
      for (const id of [paid.id, pending.id]) {
        expect(await stripeError(stripe.paymentIntents.cancel(id))).toMatchObject({ code: "payment_intent_unexpected_state" })
      }
      expect((await fakeStripe.paymentIntent(paid.id)).status).toBe("succeeded")
      expect((await fakeStripe.paymentIntent(pending.id)).status).toBe("processing")
    })
  })

  describe("refunds (medusa-payment-stripe's refundPayment)", () => {
    it("refunds a succeeded intent up to what was captured", async () => {
      const intent = await createIntent()
      await fakeStripe.confirm(intent.client_secret!)
      expect(await stripeError(stripe.refunds.create({ payment_intent: intent.id, amount: 100 }))).toMatchObject({
        code: "payment_intent_unexpected_state",
      })
      await stripe.paymentIntents.capture(intent.id, { amount_to_capture: 1000 })

      const refund = await stripe.refunds.create({ payment_intent: intent.id, amount: 400 })

      expect(refund).toMatchObject({ object: "refund", amount: 400, payment_intent: intent.id, status: "succeeded" })
      expect(await stripeError(stripe.refunds.create({ payment_intent: intent.id, amount: 601 }))).toMatchObject({
        code: "amount_too_large",
      })
      expect((await stripe.refunds.create({ payment_intent: intent.id })).amount).toBe(600)
      expect(await stripeError(stripe.refunds.create({ payment_intent: intent.id }))).toMatchObject({
        code: "charge_already_refunded",
      })
    })
  })

  describe("list and search", () => {
    it("lists newest first, with created filters, limit and starting_after / ending_before", async () => {
      const ids: string[] = []
      for (let i = 0; i < 5; i++) ids.push((await createIntent({ amount: 1000 + i })).id)
      const newestFirst = [...ids].reverse()

      const first = await stripe.paymentIntents.list({ limit: 2 })
      expect(first).toMatchObject({ object: "list", has_more: true, url: "/v1/payment_intents" })
      expect(first.data.map((i) => i.id)).toEqual(newestFirst.slice(0, 2))
      const next = await stripe.paymentIntents.list({ limit: 2, starting_after: first.data[1].id })
      expect(next.data.map((i) => i.id)).toEqual(newestFirst.slice(2, 4))
      const back = await stripe.paymentIntents.list({ limit: 2, ending_before: next.data[0].id })
      expect(back.data.map((i) => i.id)).toEqual(newestFirst.slice(0, 2))
      expect((await stripe.paymentIntents.list({ limit: 2 }).autoPagingToArray({ limit: 10 })).map((i) => i.id)).toEqual(newestFirst)

      const created = (await fakeStripe.paymentIntent(ids[0])).created
      expect((await stripe.paymentIntents.list({ created: { gte: created, lte: created + 3600 }, limit: 100 })).data).toHaveLength(5)
      expect((await stripe.paymentIntents.list({ created: { gt: created + 3600 } })).data).toEqual([])
      expect(await stripeError(stripe.paymentIntents.list({ starting_after: "pi_missing" }))).toMatchObject({
        statusCode: 404,
        code: "resource_missing",
        param: "starting_after",
      })
    })

    it("finds intents by metadata['resource_id'] (AND created>=…) only once the search lag has passed", async () => {
      await fakeStripe.setSearchLag(400)
      const ours = await createIntent({ metadata: { resource_id: "paycol_SEARCH" } })
      await createIntent({ metadata: { resource_id: "paycol_OTHER" } })
      const query = `metadata['resource_id']:'paycol_SEARCH' AND created>=${ours.created - 1}`

      expect((await stripe.paymentIntents.search({ query })).data).toEqual([])
      await sleep(450)
      const found = await stripe.paymentIntents.search({ query })
      expect(found).toMatchObject({ object: "search_result", has_more: false, next_page: null })
      expect(found.data.map((i) => i.id)).toEqual([ours.id])

      // A change is searchable after the lag too: meanwhile the old value is what the index holds.
      await stripe.paymentIntents.update(ours.id, { metadata: { resource_id: "paycol_MOVED" } })
      expect((await stripe.paymentIntents.search({ query })).data.map((i) => i.id)).toEqual([ours.id])
      await sleep(450)
      expect((await stripe.paymentIntents.search({ query })).data).toEqual([])
    })

    it("pages search results and refuses what Stripe's query language refuses", async () => {
      for (let i = 0; i < 3; i++) await createIntent({ metadata: { resource_id: "paycol_PAGED" } })
      const query = "metadata['resource_id']:'paycol_PAGED'"
      const page1 = await stripe.paymentIntents.search({ query, limit: 2 })
      expect(page1.data).toHaveLength(2)
      expect(page1.has_more).toBe(true)
      const page2 = await stripe.paymentIntents.search({ query, limit: 2, page: page1.next_page! })
      expect(page2.data).toHaveLength(1)
      expect(new Set([...page1.data, ...page2.data].map((i) => i.id)).size).toBe(3)
      expect((await stripe.paymentIntents.search({ query: `${query} OR status:'succeeded'` })).data).toHaveLength(3)

      for (const bad of [
        "description:'mugs'",
        "metadata['resource_id']:paycol_PAGED",
        "status:'canceled' AND amount>1 OR currency:'usd'",
      ]) {
        expect(await stripeError(stripe.paymentIntents.search({ query: bad }))).toMatchObject({ statusCode: 400, param: "query" })
      }
    })
  })

  describe("customers", () => {
    it("creates, retrieves and updates a customer; an empty email unsets it", async () => {
      const guest = await stripe.customers.create({ email: "" })
      expect(guest).toMatchObject({ id: expect.stringMatching(/^cus_/), object: "customer", email: null })

      const updated = await stripe.customers.update(guest.id, { email: "later@example.com", metadata: { medusa: "x" } })

      expect(updated).toMatchObject({ email: "later@example.com", metadata: { medusa: "x" } })
      expect(await stripe.customers.retrieve(guest.id)).toEqual(updated)
      expect(await stripeError(stripe.customers.create({ email: "not-an-email" }))).toMatchObject({ code: "email_invalid" })
      expect(await stripeError(stripe.customers.retrieve("cus_missing"))).toMatchObject({ statusCode: 404, code: "resource_missing" })
    })
  })

  describe("Idempotency-Key", () => {
    it("the same key and parameters answer the first result again, executing once", async () => {
      const first = await createIntent({ amount: 900 }, { idempotencyKey: "idem-create-1" })
      const again = await createIntent({ amount: 900 }, { idempotencyKey: "idem-create-1" })

      expect(again.id).toBe(first.id)
      expect(again.lastResponse.headers["idempotent-replayed"]).toBe("true")
      expect(first.lastResponse.headers["idempotent-replayed"]).toBeUndefined()
      expect((await fakeStripe.state()).payment_intents).toHaveLength(1)
      expect((await fakeStripe.history({ operation: "payment_intents.create" })).map((c) => c.outcome)).toEqual(["ok", "replayed"])
    })

    it("other parameters, or another endpoint, with a used key → idempotency_error", async () => {
      const intent = await createIntent({ amount: 900 }, { idempotencyKey: "idem-reused" })

      const otherParams = await stripeError(createIntent({ amount: 901 }, { idempotencyKey: "idem-reused" }))
      const otherEndpoint = await stripeError(stripe.paymentIntents.cancel(intent.id, {}, { idempotencyKey: "idem-reused" }))

      for (const err of [otherParams, otherEndpoint]) {
        expect(err).toBeInstanceOf(stripe.errors.StripeIdempotencyError)
        expect(err.statusCode).toBe(400)
      }
      expect(await fakeStripe.paymentIntents()).toEqual([expect.objectContaining({ id: intent.id, amount: 900, status: "requires_payment_method" })])
    })

    it("an error from execution is saved and answered again; a validation error saves nothing", async () => {
      const intent = await createIntent()
      const refused = await stripeError(stripe.paymentIntents.capture(intent.id, {}, { idempotencyKey: "idem-capture" }))
      expect(refused.code).toBe("payment_intent_unexpected_state")
      await fakeStripe.confirm(intent.client_secret!)

      const replayed = await stripeError(stripe.paymentIntents.capture(intent.id, {}, { idempotencyKey: "idem-capture" }))

      expect(replayed).toMatchObject({ code: "payment_intent_unexpected_state", message: refused.message })
      expect(replayed.payment_intent.status).toBe("requires_payment_method")
      expect((await fakeStripe.paymentIntent(intent.id)).status).toBe("requires_capture")
      expect((await stripe.paymentIntents.capture(intent.id, {}, { idempotencyKey: "idem-capture-2" })).status).toBe("succeeded")

      const invalid = await stripeError(stripe.paymentIntents.create({ currency: "usd" } as any, { idempotencyKey: "idem-invalid" }))
      expect(invalid.code).toBe("parameter_missing")
      const valid = await createIntent({}, { idempotencyKey: "idem-invalid" })
      expect(valid.lastResponse.headers["idempotent-replayed"]).toBeUndefined()
    })

    it("keys belong to the API key that sent them", async () => {
      const other = fakeStripe.client({ apiKey: "sk_test_another_account_key" })

      const mine = await createIntent({ amount: 900 }, { idempotencyKey: "idem-scoped" })
      const theirs = await other.paymentIntents.create(
        { amount: 900, currency: "usd", capture_method: "manual" },
        { idempotencyKey: "idem-scoped" }
      )

      expect(theirs.id).not.toBe(mine.id)
      expect(theirs.lastResponse.headers["idempotent-replayed"]).toBeUndefined()
    })

    it("a key still executing answers 409 idempotency_key_in_use", async () => {
      await fakeStripe.faults({ "payment_intents.create": { delayMs: 600, times: 1 } })

      const [slow, concurrent] = await Promise.allSettled([
        createIntent({}, { idempotencyKey: "idem-inflight" }),
        sleep(150).then(() => createIntent({}, { idempotencyKey: "idem-inflight" })),
      ])

      expect(slow.status).toBe("fulfilled")
      expect(concurrent.status).toBe("rejected")
      expect((concurrent as PromiseRejectedResult).reason).toMatchObject({ statusCode: 409, code: "idempotency_key_in_use" })
      expect((await fakeStripe.state()).payment_intents).toHaveLength(1)
    })
  })

  describe("scripted faults", () => {
    it("a 5xx in front of the API executes nothing", async () => {
      await fakeStripe.faults({ "payment_intents.create": { fail: "api_error", times: 1 } })

      const err = await stripeError(createIntent({}, { idempotencyKey: "idem-5xx" }))

      expect(err).toBeInstanceOf(stripe.errors.StripeAPIError)
      expect(err.statusCode).toBe(500)
      expect((await fakeStripe.state()).payment_intents).toEqual([])
      // Nothing was saved under the key: the retry executes.
      const retried = await createIntent({}, { idempotencyKey: "idem-5xx" })
      expect(retried.lastResponse.headers["idempotent-replayed"]).toBeUndefined()
    })

    // stripe-node 11 resends a request once, on its own, when the connection was
    // reset (ECONNRESET, EPIPE), whatever maxNetworkRetries says, and only sends an
    // Idempotency-Key it was given (or generates one when it may retry): the key
    // decides whether that resend makes a second object.
    it("act then fail: the connection resets after the intent exists; stripe-node's resend with the key gets that intent", async () => {
      await fakeStripe.faults({ "payment_intents.create": { fail: "reset", afterEffect: true, times: 1 } })

      const intent = await createIntent({ metadata: { resource_id: "paycol_ACTFAIL" } }, { idempotencyKey: "idem-reset" })

      expect(await fakeStripe.paymentIntents({ resourceId: "paycol_ACTFAIL" })).toEqual([expect.objectContaining({ id: intent.id })])
      expect((await fakeStripe.history({ operation: "payment_intents.create" })).map((c) => c.outcome)).toEqual(["fault:reset", "replayed"])
    })

    it("act then fail without an idempotency key (as medusa-payment-stripe calls): the resend makes a second intent", async () => {
      await fakeStripe.faults({ "payment_intents.create": { fail: "reset", afterEffect: true, times: 1 } })

      const intent = await createIntent({ metadata: { resource_id: "paycol_TWICE" } })

      const both = await fakeStripe.paymentIntents({ resourceId: "paycol_TWICE" })
      expect(both).toHaveLength(2)
      expect(both[1].id).toBe(intent.id)
      expect((await fakeStripe.history({ operation: "payment_intents.create" })).map((c) => [c.outcome, c.idempotency_key])).toEqual([
        ["fault:reset", null],
        ["ok", null],
      ])
    })

    it("act then fail twice: the caller sees a connection error though the intent exists; a retry with the key gets it", async () => {
      await fakeStripe.faults({ "payment_intents.create": { fail: "reset", afterEffect: true, times: 2 } })

      const err = await stripeError(createIntent({ metadata: { resource_id: "paycol_LOST" } }, { idempotencyKey: "idem-lost" }))

      expect(err).toBeInstanceOf(stripe.errors.StripeConnectionError)
      const [created] = await fakeStripe.paymentIntents({ resourceId: "paycol_LOST" })
      expect(created).toMatchObject({ status: "requires_payment_method" })
      const retried = await createIntent({ metadata: { resource_id: "paycol_LOST" } }, { idempotencyKey: "idem-lost" })
      expect(retried.id).toBe(created.id)
      expect(await fakeStripe.paymentIntents({ resourceId: "paycol_LOST" })).toHaveLength(1)
    })

    it("refuses with the Stripe error it is given, for the matching collection only, `times` times", async () => {
      const ours = await createIntent({ metadata: { resource_id: "paycol_REFUSED" } })
      const other = await createIntent({ metadata: { resource_id: "paycol_FINE" } })
      await fakeStripe.faults({
        "payment_intents.cancel": {
          fail: "error",
          status: 402,
          error: { type: "card_error", code: "card_declined", decline_code: "do_not_honor", message: "Declined" },
          resourceId: "paycol_REFUSED",
          times: 1,
        },
      })

      const refused = await stripeError(stripe.paymentIntents.cancel(ours.id))

      expect(refused).toBeInstanceOf(stripe.errors.StripeCardError)
      expect(refused).toMatchObject({ statusCode: 402, code: "card_declined", decline_code: "do_not_honor" })
      expect((await stripe.paymentIntents.cancel(other.id)).status).toBe("canceled")
      expect((await stripe.paymentIntents.cancel(ours.id)).status).toBe("canceled")
    })

    it("a hung call never answers: the client times out, the fake counts it in flight", async () => {
      const intent = await createIntent()
      await fakeStripe.faults({ "payment_intents.retrieve": { fail: "hang", times: 1 } })
      const impatient = fakeStripe.client({ timeout: 400 })

      const err = await stripeError(impatient.paymentIntents.retrieve(intent.id))

      expect(err).toBeInstanceOf(stripe.errors.StripeConnectionError)
      const state = await fakeStripe.state()
      expect(state.inflight["payment_intents.retrieve"]).toBe(1)
      expect((await fakeStripe.history({ operation: "payment_intents.retrieve" }))[0].outcome).toBe("fault:hang")
    })
  })

  describe("authentication and routing", () => {
    it("refuses a missing, malformed or live key with 401, an unknown URL with 404", async () => {
      for (const apiKey of ["sk_live_not_here", "pk_test_publishable"]) {
        const err = await stripeError(fakeStripe.client({ apiKey }).paymentIntents.list())
        expect(err).toBeInstanceOf(stripe.errors.StripeAuthenticationError)
        expect(err.statusCode).toBe(401)
      }
      const anonymous = await fetch(`${fakeStripe.url}/v1/payment_intents`)
      expect(anonymous.status).toBe(401)
      const unknown = await fetch(`${fakeStripe.url}/v1/charges/ch_1/dispute`, { headers: { authorization: `Bearer ${fakeStripe.apiKey}` } })
      expect(unknown.status).toBe(404)
      expect(((await unknown.json()) as any).error).toMatchObject({ type: "invalid_request_error", message: expect.stringMatching(/Unrecognized request URL/) })
    })
  })

  describe("events and webhooks", () => {
    let receiver: http.Server
    let receiverUrl: string
    let received: { signature: string; payload: string }[]
    let answerStatus: number[]

    beforeAll(async () => {
      receiver = http.createServer((req, res) => {
        const chunks: Buffer[] = []
        req.on("data", (c) => chunks.push(c))
        req.on("end", () => {
          received.push({ signature: String(req.headers["stripe-signature"]), payload: Buffer.concat(chunks).toString("utf8") })
          res.writeHead(answerStatus.shift() ?? 200).end()
        })
      })
      await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve))
      receiverUrl = `http://127.0.0.1:${(receiver.address() as any).port}/stripe/hooks`
    })

    afterAll(() => new Promise<void>((resolve) => receiver.close(() => resolve())))

    beforeEach(() => {
      received = []
      answerStatus = []
    })

    /** The events the receiver got, verified as medusa-payment-stripe verifies them (stripe-node constructEvent). */
    const verifiedEvents = () =>
      received.map((r) => stripe.webhooks.constructEvent(r.payload, r.signature, fakeStripe.webhookSecret) as unknown as StripeEvent)

    it("generates Stripe's payment_intent events as the intent moves", async () => {
      const intent = await createIntent()
      await fakeStripe.confirm(intent.client_secret!, "requires_action")
      await fakeStripe.confirm(intent.client_secret!)
      await stripe.paymentIntents.capture(intent.id)

      const events = await fakeStripe.events({ objectId: intent.id })

      expect(events.map((e) => e.type)).toEqual([
        "payment_intent.created",
        "payment_intent.requires_action",
        "payment_intent.amount_capturable_updated",
        "payment_intent.succeeded",
      ])
      expect(events[2]).toMatchObject({
        id: expect.stringMatching(/^evt_/),
        object: "event",
        api_version: "2022-11-15",
        created: expect.any(Number),
        data: { object: { id: intent.id, status: "requires_capture", amount_capturable: 1500 } },
      })
      expect(new Set(events.map((e) => e.id)).size).toBe(4)
    })

    it("signs as Stripe signs: stripe-node accepts the fake's delivery and the helper's, refuses another secret", async () => {
      const intent = await createIntent()
      const event = await fakeStripe.buildEvent("payment_intent.succeeded", intent.id, { status: "succeeded" })
      expect(event.data.object).toMatchObject({ id: intent.id, status: "succeeded" })

      expect(await fakeStripe.deliver(event.id, receiverUrl)).toMatchObject({ status: 200, error: null })

      expect(verifiedEvents()).toEqual([expect.objectContaining({ id: event.id, type: "payment_intent.succeeded" })])
      const payload = JSON.stringify(event)
      const header = fakeStripe.signatureHeader(payload)
      expect(stripe.webhooks.constructEvent(payload, header, fakeStripe.webhookSecret)).toMatchObject({ id: event.id })
      expect(() => stripe.webhooks.constructEvent(received[0].payload, received[0].signature, "whsec_other")).toThrow(
        stripe.errors.StripeSignatureVerificationError
      )
    })

    it("delivers to a registered endpoint at least once: retried until 2xx, twice when asked", async () => {
      const endpoint = await fakeStripe.addWebhookEndpoint({
        url: receiverUrl,
        enabled_events: ["payment_intent.amount_capturable_updated"],
        duplicate: true,
        retry_delay_ms: 50,
      })
      answerStatus = [500]
      const intent = await createIntent()

      await fakeStripe.confirm(intent.client_secret!)

      await waitFor("the event delivered twice after a retry", async () => received.length >= 3)
      await sleep(200)
      const events = verifiedEvents()
      expect(events.map((e) => e.type)).toEqual(Array(3).fill("payment_intent.amount_capturable_updated"))
      expect(new Set(events.map((e) => e.id)).size).toBe(1)
      const deliveries = await fakeStripe.deliveries({ endpointId: endpoint.id })
      expect(deliveries.map((d) => [d.copy, d.attempt, d.status])).toEqual([
        [1, 1, 500],
        [1, 2, 200],
        [2, 1, 200],
      ])
    })

    it("delivers the events of a window shuffled: each one once, whatever the order", async () => {
      await fakeStripe.addWebhookEndpoint({ url: receiverUrl, shuffle_window_ms: 300 })
      const intents = [await createIntent(), await createIntent(), await createIntent()]
      for (const intent of intents) await fakeStripe.confirm(intent.client_secret!)

      await waitFor("six events delivered", async () => received.length >= 6)

      const generated = (await fakeStripe.events()).map((e) => e.id)
      expect(generated).toHaveLength(6)
      expect(verifiedEvents().map((e) => e.id).sort()).toEqual([...generated].sort())
    })
  })
})
