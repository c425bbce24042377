import { adminApi, adminHeaders, api, HttpResponse } from "./helpers/http"
import { createPaymentCollection, createRegion, db, freeCountry } from "./helpers/factories"
import { fakeStripe, StripePaymentIntent } from "./helpers/fake-stripe"
import { waitForSettledJournal } from "./helpers/journal"
import { linkedPayments, linkedSessions, waitFor as waitForValue } from "./helpers/payments"
import { orderEditSeed, Shop } from "./helpers/order-edit-seed"
import { RecordedEvent, waitForEvents } from "./helpers/events"
import { testEnv } from "./helpers/env"

// The store group through HTTP with the REAL medusa-payment-stripe 6.0.9 (its
// provider "stripe", its stripe-node 11) against the fake Stripe API: what a
// merchant paying order edits with Stripe runs. What Stripe holds is read from
// the fake; what Medusa holds, from the database.

const base = (id: string) => `/store/payment-collections/${id}`

function ok<T = any>(what: string, res: HttpResponse<T>): T {
  if (res.status < 200 || res.status >= 300) throw new Error(`${what} answered ${res.status}: ${res.text}`)
  return res.body
}

const byId = (a: { id: string }, b: { id: string }) => a.id.localeCompare(b.id)

/**
 * Stripe holds exactly what the database holds: one live (not canceled) intent
 * per session of the collection, of the session's amount. Returns the live intents.
 */
async function expectStripeMatchesDatabase(collectionId: string): Promise<StripePaymentIntent[]> {
  await waitForSettledJournal(collectionId)
  const sessions = await linkedSessions(collectionId)
  const live = await fakeStripe.liveIntents(collectionId)
  expect(live.map((i) => ({ id: i.id, amount: i.amount })).sort(byId)).toEqual(
    sessions.map((s) => ({ id: s.data.id, amount: s.amount })).sort(byId)
  )
  return live
}

interface StepAtStripe {
  /** Intents created for the collection during the step */
  created: number
  /** Intents of the collection canceled during the step */
  canceled: number
  /** Stripe customers created during the step */
  customers: number
}

/** Runs `step` and counts what it made happen at Stripe for the collection (once the plugin's calls settled). */
async function atStripe<T>(collectionId: string, step: () => Promise<T>): Promise<{ result: T; stripe: StepAtStripe }> {
  const before = await fakeStripe.paymentIntents({ resourceId: collectionId })
  const customersBefore = (await fakeStripe.customers()).length
  const result = await step()
  await waitForSettledJournal(collectionId)
  const after = await fakeStripe.paymentIntents({ resourceId: collectionId })
  const was = new Map(before.map((i) => [i.id, i.status]))
  return {
    result,
    stripe: {
      created: after.filter((i) => !was.has(i.id)).length,
      canceled: after.filter((i) => i.status === "canceled" && was.get(i.id) !== "canceled").length,
      customers: (await fakeStripe.customers()).length - customersBefore,
    },
  }
}

describe("the store group with the real medusa-payment-stripe against the fake Stripe API", () => {
  let region: any

  beforeAll(async () => {
    region = await createRegion({ providers: ["manual", "stripe"] })
  })

  beforeEach(() => fakeStripe.reset())

  afterAll(() => db.end())

  async function stripeSession(collectionId: string): Promise<any> {
    const res = await api.post(`${base(collectionId)}/sessions`, { provider_id: "stripe" })
    return ok("POST /sessions", res).payment_collection.payment_sessions[0]
  }

  it("creates a session whose data is the PaymentIntent, with the client_secret the storefront needs", async () => {
    const collection = await createPaymentCollection({ regionId: region.id, amount: 4200 })

    const { result: session, stripe } = await atStripe(collection.id, () => stripeSession(collection.id))

    expect(session).toMatchObject({
      provider_id: "stripe",
      amount: 4200,
      status: "pending",
      data: {
        id: expect.stringMatching(/^pi_/),
        object: "payment_intent",
        client_secret: expect.stringMatching(/^pi_\w+_secret_\w+$/),
        amount: 4200,
        currency: "usd",
        capture_method: "manual",
        status: "requires_payment_method",
        metadata: { resource_id: collection.id },
      },
    })
    // A guest: medusa-payment-stripe makes a Stripe customer for every new intent (the email core passes is "").
    expect(stripe).toEqual({ created: 1, canceled: 0, customers: 1 })
    const [intent] = await expectStripeMatchesDatabase(collection.id)
    expect(intent).toMatchObject({ id: session.data.id, customer: expect.stringMatching(/^cus_/) })
    const [customer] = await fakeStripe.customers()
    expect(customer).toMatchObject({ id: intent.customer, email: null })
  })

  it("the shopper confirms, authorize answers 200 authorized with one payment holding the intent", async () => {
    const collection = await createPaymentCollection({ regionId: region.id, amount: 3000 })
    const session = await stripeSession(collection.id)
    const confirmed = await fakeStripe.confirmSession(session)
    expect(confirmed.payment_intent.status).toBe("requires_capture")

    const res = await api.post(`${base(collection.id)}/sessions/${session.id}/authorize`)

    expect(res.status).toBe(200)
    expect(res.body.payment_session).toMatchObject({ id: session.id, status: "authorized", amount: 3000 })
    const payments = await linkedPayments(collection.id)
    expect(payments).toEqual([expect.objectContaining({ provider_id: "stripe", amount: 3000, currency_code: "usd" })])
    expect(payments[0].data.id).toBe(session.data.id)
    expect(await db.query(`SELECT status, authorized_amount FROM payment_collection WHERE id = $1`, [collection.id])).toMatchObject({
      rows: [{ status: "authorized", authorized_amount: 3000 }],
    })
    // Authorize only reads the intent: its status (authorizePayment), then the payment's data (retrievePayment), as core.
    expect((await fakeStripe.history({ objectId: session.data.id })).map((c) => c.operation)).toEqual([
      "payment_intents.create",
      "payment_intents.retrieve",
      "payment_intents.retrieve",
    ])
    expect(payments[0].data).toMatchObject({ id: session.data.id, status: "requires_capture", amount_capturable: 3000 })
    expect((await fakeStripe.paymentIntent(session.data.id)).status).toBe("requires_capture")
  })

  it("3-D Secure: authorize answers 200 requires_more (awaiting, no payment) until the shopper completes it", async () => {
    const collection = await createPaymentCollection({ regionId: region.id, amount: 2500 })
    const session = await stripeSession(collection.id)
    await fakeStripe.confirmSession(session, "requires_action")

    const pending = await api.post(`${base(collection.id)}/sessions/batch/authorize`, { session_ids: [session.id] })

    expect(pending.status).toBe(200)
    expect(pending.body.payment_collection).toMatchObject({ status: "awaiting", authorized_amount: 0 })
    expect(pending.body.payment_collection.payment_sessions).toEqual([
      expect.objectContaining({ id: session.id, status: "requires_more" }),
    ])
    expect(await linkedPayments(collection.id)).toEqual([])

    await fakeStripe.confirmSession(session, "authorized")
    const done = await api.post(`${base(collection.id)}/sessions/batch/authorize`, { session_ids: [session.id] })

    expect(done.status).toBe(200)
    expect(done.body.payment_collection).toMatchObject({ status: "authorized", authorized_amount: 2500 })
    expect(await linkedPayments(collection.id)).toHaveLength(1)
  })

  it("a declined card: authorize does not authorize, the shopper retries with another card", async () => {
    const collection = await createPaymentCollection({ regionId: region.id, amount: 2200 })
    const session = await stripeSession(collection.id)
    const declined = await fakeStripe.confirmSession(session, "declined")
    expect(declined.error).toMatchObject({ code: "card_declined" })

    const first = await api.post(`${base(collection.id)}/sessions/batch/authorize`, { session_ids: [session.id] })

    expect(first.status).toBe(200)
    expect(first.body.payment_collection).toMatchObject({ status: "awaiting", authorized_amount: 0 })
    expect(first.body.payment_collection.payment_sessions[0]).toMatchObject({ id: session.id, status: "pending" })
    await fakeStripe.confirmSession(session)
    const second = await api.post(`${base(collection.id)}/sessions/batch/authorize`, { session_ids: [session.id] })
    expect(second.body.payment_collection).toMatchObject({ status: "authorized", authorized_amount: 2200 })
  })

  it("split batches with amounts changed and sessions dropped: Stripe's live intents stay the database's sessions", async () => {
    const collection = await createPaymentCollection({ regionId: region.id, amount: 5000 })
    const batch = (sessions: unknown[]) => api.post(`${base(collection.id)}/sessions/batch`, { sessions })

    const first = await atStripe(collection.id, () =>
      batch([
        { provider_id: "stripe", amount: 3000 },
        { provider_id: "stripe", amount: 2000 },
      ])
    )
    expect(first.result.status).toBe(200)
    const [a, b] = first.result.body.payment_collection.payment_sessions
    expect(first.stripe).toEqual({ created: 2, canceled: 0, customers: 2 })
    await expectStripeMatchesDatabase(collection.id)

    // New amounts: medusa-payment-stripe's updatePayment sees no customer with a
    // stripe_id (a guest) where the intent names one, and makes a new intent (and a
    // new customer) instead of updating; the plugin deletes the replaced ones.
    const changed = await atStripe(collection.id, () =>
      batch([
        { provider_id: "stripe", amount: 3500, session_id: a.id },
        { provider_id: "stripe", amount: 1500, session_id: b.id },
      ])
    )
    expect(changed.result.status).toBe(200)
    expect(changed.result.body.payment_collection.payment_sessions.map((s: any) => [s.id, s.amount])).toEqual([
      [a.id, 3500],
      [b.id, 1500],
    ])
    expect(changed.stripe).toEqual({ created: 2, canceled: 2, customers: 2 })
    const afterChange = await expectStripeMatchesDatabase(collection.id)
    expect(afterChange.map((i) => i.id)).not.toContain(a.data.id)

    const dropped = await atStripe(collection.id, () => batch([{ provider_id: "stripe", amount: 5000, session_id: a.id }]))
    expect(dropped.result.status).toBe(200)
    expect(dropped.result.body.payment_collection.payment_sessions).toEqual([expect.objectContaining({ id: a.id, amount: 5000 })])
    // b's intent is canceled; a's is replaced (one created, one canceled).
    expect(dropped.stripe).toEqual({ created: 1, canceled: 2, customers: 1 })
    await expectStripeMatchesDatabase(collection.id)

    const unchanged = await atStripe(collection.id, () => batch([{ provider_id: "stripe", amount: 5000, session_id: a.id }]))
    expect(unchanged.result.status).toBe(200)
    expect(unchanged.stripe).toEqual({ created: 0, canceled: 0, customers: 0 })

    const [session] = (await linkedSessions(collection.id)) as any[]
    await fakeStripe.confirmSession(session)
    const authorized = await api.post(`${base(collection.id)}/sessions/batch/authorize`, { session_ids: [a.id] })
    expect(authorized.body.payment_collection).toMatchObject({ status: "authorized", authorized_amount: 5000 })
    await expectStripeMatchesDatabase(collection.id)
  })

  it("refresh: a new session with a new intent; the old intent is canceled", async () => {
    const collection = await createPaymentCollection({ regionId: region.id, amount: 1800 })
    const old = await stripeSession(collection.id)

    const { result: res, stripe } = await atStripe(collection.id, () => api.post(`${base(collection.id)}/sessions/${old.id}`))

    expect(res.status).toBe(200)
    const fresh = res.body.payment_session
    expect(fresh).toMatchObject({ provider_id: "stripe", amount: 1800, data: { id: expect.stringMatching(/^pi_/) } })
    expect(fresh.data.id).not.toBe(old.data.id)
    expect(stripe).toEqual({ created: 1, canceled: 1, customers: 1 })
    expect((await fakeStripe.paymentIntent(old.data.id)).status).toBe("canceled")
    expect((await expectStripeMatchesDatabase(collection.id)).map((i) => i.id)).toEqual([fresh.data.id])
  })

  it("the package's webhook route takes an event signed with the endpoint secret and refuses another signature", async () => {
    const collection = await createPaymentCollection({ regionId: region.id, amount: 1200 })
    const session = await stripeSession(collection.id)
    await fakeStripe.confirmSession(session)
    const event = await fakeStripe.buildEvent("payment_intent.amount_capturable_updated", session.data.id)

    const forged = await fakeStripe.sendWebhook(testEnv().backendUrl, event, { secret: "whsec_not_the_endpoint_secret" })
    const signed = await fakeStripe.sendWebhook(testEnv().backendUrl, event)

    expect(forged.status).toBe(400)
    expect(forged.text).toMatch(/Webhook Error/)
    expect(signed.status).toBe(200)
    // The route emits with the package's delay; the event bus delivers it a little later.
    const ours = (all: RecordedEvent[]) => all.filter((e) => e.data?.id === event.id)
    const emitted = ours(await waitForEvents("medusa.stripe_payment_intent_update", (all) => ours(all).length > 0))
    expect(emitted).toEqual([
      expect.objectContaining({
        data: expect.objectContaining({ type: event.type, data: { object: expect.objectContaining({ id: session.data.id }) } }),
      }),
    ])
  })

  it("the fake's own deliveries reach the package's webhook route and pass its signature check", async () => {
    const endpoint = await fakeStripe.addWebhookEndpoint({
      url: `${testEnv().backendUrl}/stripe/hooks`,
      enabled_events: ["payment_intent.amount_capturable_updated"],
    })
    const collection = await createPaymentCollection({ regionId: region.id, amount: 1300 })
    const session = await stripeSession(collection.id)

    await fakeStripe.confirmSession(session)

    const deliveries = await waitForValue("the delivery answered", async () => {
      const all = await fakeStripe.deliveries({ endpointId: endpoint.id })
      return all.length > 0 && all.every((d) => d.status !== null) ? all : null
    })
    expect(deliveries).toHaveLength(1)
    const [delivery] = deliveries!
    expect(delivery).toMatchObject({ type: "payment_intent.amount_capturable_updated", object_id: session.data.id, status: 200 })
    const ours = (all: RecordedEvent[]) => all.filter((e) => e.data?.id === delivery.event_id)
    expect(ours(await waitForEvents("medusa.stripe_payment_intent_update", (all) => ours(all).length > 0))).toHaveLength(1)
  })

  describe("an order edit paid with Stripe", () => {
    let shop: Shop

    beforeAll(async () => {
      const countryCode = await freeCountry()
      const stripeRegion = await createRegion({ providers: ["manual", "stripe"], countries: [countryCode] })
      ok(
        "POST /admin/regions/:id/fulfillment-providers",
        await adminApi.post(`/admin/regions/${stripeRegion.id}/fulfillment-providers`, { provider_id: "test-ship" })
      )
      const shippingOptionId = ok(
        "POST /admin/shipping-options",
        await adminApi.post("/admin/shipping-options", {
          name: "Standard",
          region_id: stripeRegion.id,
          provider_id: "test-ship",
          data: { id: "test-ship" },
          price_type: "flat_rate",
          amount: 500,
        })
      ).shipping_option.id
      const variantId = ok(
        "POST /admin/products",
        await adminApi.post("/admin/products", {
          title: `Stripe mug ${Date.now()}`,
          status: "published",
          options: [{ title: "Size" }],
          variants: [
            {
              title: "One size",
              manage_inventory: false,
              prices: [{ currency_code: "usd", amount: 2000 }],
              options: [{ value: "One size" }],
            },
          ],
        })
      ).product.variants[0].id
      shop = { regionId: stripeRegion.id, countryCode, shippingOptionId, variantId }
    })

    it("is paid, completed, attached to the order, and the admin's capture reaches Stripe", async () => {
      const url = testEnv().backendUrl
      const order = await orderEditSeed.placeOrder(url, shop)
      const requested = await orderEditSeed.requestOrderEdit(url, shop, order.id, { adminHeaders: adminHeaders(), quantity: 2 })
      expect(requested).toMatchObject({ status: "requested", difference_due: 4000 })
      const collectionId: string = requested.payment_collection_id

      const batch = ok(
        "POST /sessions/batch",
        await api.post(`${base(collectionId)}/sessions/batch`, { sessions: [{ provider_id: "stripe", amount: 4000 }] })
      )
      const [session] = batch.payment_collection.payment_sessions
      await fakeStripe.confirmSession(session)
      const authorized = ok(
        "POST /sessions/batch/authorize",
        await api.post(`${base(collectionId)}/sessions/batch/authorize`, { session_ids: [session.id] })
      )
      expect(authorized.payment_collection).toMatchObject({ status: "authorized", authorized_amount: 4000 })

      const completed = await api.post(`/store/order-edits/${requested.id}/complete`)

      expect(completed.status).toBe(200)
      expect(completed.body.order_edit).toMatchObject({ id: requested.id, status: "confirmed" })
      const [payment] = await linkedPayments(collectionId)
      expect(payment).toMatchObject({ provider_id: "stripe", amount: 4000, order_id: order.id, captured_at: null })
      expect(payment.data.id).toBe(session.data.id)

      const captured = await adminApi.post(`/admin/payments/${payment.id}/capture`)

      expect(captured.status).toBe(200)
      expect(captured.body.payment).toMatchObject({ id: payment.id, captured_at: expect.any(String) })
      expect(await fakeStripe.paymentIntent(session.data.id)).toMatchObject({
        status: "succeeded",
        amount_received: 4000,
        amount_capturable: 0,
      })
      expect((await fakeStripe.history({ operation: "payment_intents.capture" })).map((c) => [c.object_id, c.outcome])).toEqual([
        [session.data.id, "ok"],
      ])
      const adminOrder = ok("GET /admin/orders/:id", await adminApi.get(`/admin/orders/${order.id}`)).order
      expect(adminOrder.payments).toContainEqual(expect.objectContaining({ id: payment.id, provider_id: "stripe", amount: 4000 }))
    })
  })
})
