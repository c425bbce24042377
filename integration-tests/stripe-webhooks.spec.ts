import { createApi, Api, adminHeaders } from "./helpers/http"
import { createPaymentCollection, db } from "./helpers/factories"
import { replaceTestEnv } from "./helpers/env"
import { ExtraBackend, startExtraBackend, stopExtraBackends } from "./helpers/backend"
import { dropRunEventQueue, TestRedis, testRedis } from "./helpers/redis"
import { fakeStripe, StripeEvent } from "./helpers/fake-stripe"
import { attemptRows, waitForSettledJournal } from "./helpers/journal"
import {
  base,
  collectionRow,
  linkedPayments,
  linkedSessions,
  parallel,
  retryWhileBusy,
  sleep,
  statuses,
  waitFor,
} from "./helpers/payments"
import { Shop } from "./helpers/order-edit-seed"
import { RecordedEvent, waitForEvents } from "./helpers/events"
import { OwnDatabase, useOwnDatabase } from "./helpers/own-database"
import {
  createStripeShop,
  orderEditRow,
  providerEvents,
  requestEdit,
  stripeSession,
  waitForCollectionStatus,
  waitForEditStatus,
  waitForProviderEvent,
} from "./helpers/stripe-shop"

// What Stripe tells the backend asynchronously, with the real
// medusa-payment-stripe 6.0.9 against the fake Stripe API: its webhook route
// (POST /stripe/hooks) takes the signed event and emits
// medusa.stripe_payment_intent_update; the plugin hears it for intents of
// payment collections. The shopper who confirms the card and closes the tab
// (the storefront never calls authorize), a capture made at Stripe, the same
// event twice and events out of order, the option that leaves the edit to the
// shopper, the status sync for events that never came, and the webhook racing
// the storefront's own authorize over two backends.
//
// On a database of its own: every backend on a database runs the plugin's
// status sync and core's event enqueuer over all of it, so the backends here
// are all the spec's, each with the options the test names. The first ones
// have the status sync off, so that only the webhook can record what the
// shopper did.

const SMALL = { reconcile_interval_ms: 500, provider_timeout_ms: 1500, finder_settle_ms: 1000 }
/** Only the webhook tells the backend: the status sync is off. */
const WEBHOOK_ONLY = { ...SMALL, status_sync_window_hours: 0 }

const optionsEnv = (options: Record<string, unknown>) => ({
  PAYMENT_COLLECTIONS_OPTIONS: JSON.stringify(options),
  ...(process.env.PCP_DEBUG_LOG_LEVEL ? { LOG_LEVEL: process.env.PCP_DEBUG_LOG_LEVEL } : {}),
})

/** The event Stripe generated for the intent (the fake's account, as Stripe's). */
async function stripeEvent(type: string, intentId: string, except: StripeEvent[] = []): Promise<StripeEvent> {
  const events = (await fakeStripe.events({ type, objectId: intentId })).filter((e) => !except.some((x) => x.id === e.id))
  if (events.length !== 1) throw new Error(`expected one ${type} event of ${intentId}, Stripe has ${events.length}`)
  return events[0]
}

async function sendWebhook(url: string, event: StripeEvent): Promise<void> {
  const res = await fakeStripe.sendWebhook(url, event)
  if (res.status !== 200) throw new Error(`POST /stripe/hooks answered ${res.status}: ${res.text}`)
}

/** The journal's `status` rows of a session: how often the plugin asked Stripe about it. */
async function statusQuestions(collectionId: string, sessionId: string) {
  return (await attemptRows(collectionId)).filter((r) => r.operation === "status" && r.payment_session_id === sessionId)
}

describe("Stripe's webhooks and the status sync record what the shopper did at Stripe", () => {
  let own: OwnDatabase
  let backend: ExtraBackend
  let url: string
  let store: Api
  let shop: Shop

  /** Moves the spec to a new backend on its database (the previous one stopped first). */
  async function useBackend(options: Record<string, unknown>, env: Record<string, string> = {}): Promise<void> {
    await backend?.stop()
    backend = await startExtraBackend({ env: { ...optionsEnv(options), ...env }, logFile: process.env.PCP_BACKEND_LOG || undefined })
    url = backend.url
    store = createApi(url)
    replaceTestEnv({ backendUrl: url })
  }

  beforeAll(async () => {
    own = await useOwnDatabase("webhooks")
    await useBackend(WEBHOOK_ONLY)
    shop = await createStripeShop(url)
  }, 240_000)

  afterAll(async () => {
    await fakeStripe.faults({ "payment_intents.retrieve": null })
    await own?.drop()
  }, 60_000)

  it("the shopper confirms and closes the tab: amount_capturable_updated authorizes the collection and completes the order edit", async () => {
    const { order, edit, collectionId, due } = await requestEdit(url, shop)
    expect(due).toBe(4000)
    const session = await stripeSession(url, collectionId)
    const confirmed = await fakeStripe.confirmSession(session)
    expect(confirmed.payment_intent.status).toBe("requires_capture")
    // The tab is closed: the storefront never calls authorize. Stripe tells the shop.
    const event = await stripeEvent("payment_intent.amount_capturable_updated", session.data.id)

    const sent = Date.now()
    await sendWebhook(url, event)
    const authorizedAt = await waitForCollectionStatus(collectionId, "authorized")
    const completedAt = await waitForEditStatus(edit.id, "confirmed")
    console.log(
      `stripe webhook: ms from POST /stripe/hooks to the collection authorized ${authorizedAt - sent}, to the order edit completed ${completedAt - sent}`
    )

    expect(await collectionRow(collectionId)).toMatchObject({ status: "authorized", authorized_amount: 4000 })
    expect(await linkedSessions(collectionId)).toEqual([
      expect.objectContaining({ id: session.id, status: "authorized", payment_authorized_at: expect.any(Date) }),
    ])
    const payments = await linkedPayments(collectionId)
    expect(payments).toEqual([
      expect.objectContaining({ provider_id: "stripe", amount: 4000, order_id: order.id, captured_at: null, canceled_at: null }),
    ])
    expect(payments[0].data).toMatchObject({ id: session.data.id, status: "requires_capture", amount_capturable: 4000 })
    // Completed as the store's complete route completes it: confirmed, the payment on the order.
    const adminOrder = (await createApi(url, adminHeaders()).get(`/admin/orders/${order.id}`)).body.order
    expect(adminOrder.payments).toContainEqual(expect.objectContaining({ id: payments[0].id, provider_id: "stripe", amount: 4000 }))
    const adminEdit = (await createApi(url, adminHeaders()).get(`/admin/order-edits/${edit.id}`)).body.order_edit
    expect(adminEdit).toMatchObject({ status: "confirmed", confirmed_at: expect.any(String) })
    // The hold stays on the card, for the admin's capture.
    expect(await fakeStripe.paymentIntent(session.data.id)).toMatchObject({ status: "requires_capture", amount_capturable: 4000 })
    // Stripe was asked (the event is a hint); the event is remembered as acted on.
    const rows = await waitForSettledJournal(collectionId)
    expect(rows.filter((r) => r.operation === "status")).toEqual([
      expect.objectContaining({ payment_session_id: session.id, provider_id: "stripe", state: "committed" }),
    ])
    expect(await providerEvents(collectionId)).toEqual([event.id])
    const ours = (all: RecordedEvent[]) => all.filter((e) => e.data?.id === collectionId)
    expect(ours(await waitForEvents("payment-collection.payment_authorized", (all) => ours(all).length > 0))).toHaveLength(1)
  })

  it("payment_intent.succeeded for an intent the merchant captured at Stripe: the payment is recorded captured", async () => {
    const collection = await createPaymentCollection({ regionId: shop.regionId, amount: 3300 })
    const session = await stripeSession(url, collection.id)
    await fakeStripe.confirmSession(session)
    const authorized = await store.post(`${base(collection.id)}/sessions/${session.id}/authorize`)
    expect(authorized.status).toBe(200)
    const [before] = await linkedPayments(collection.id)
    expect(before).toMatchObject({ amount: 3300, captured_at: null })
    // Captured in Stripe's dashboard, not through Medusa.
    await fakeStripe.client().paymentIntents.capture(session.data.id)
    const event = await stripeEvent("payment_intent.succeeded", session.data.id)

    await sendWebhook(url, event)

    const captured = await waitFor("the payment to be recorded captured", async () => {
      const [payment] = await linkedPayments(collection.id)
      return payment.captured_at ? payment : null
    })
    expect(captured).toMatchObject({ id: before.id, amount: 3300, captured_at: expect.any(Date), canceled_at: null })
    expect(captured.data).toMatchObject({ id: session.data.id, status: "succeeded", amount_received: 3300 })
    expect(await linkedPayments(collection.id)).toHaveLength(1)
    expect(await collectionRow(collection.id)).toMatchObject({ status: "authorized", authorized_amount: 3300 })
    expect(await waitForSettledJournal(collection.id)).not.toContainEqual(expect.objectContaining({ operation: "cancel" }))
  })

  it("payment_intent.succeeded for an intent captured at confirmation (automatic capture), tab closed: authorized and captured", async () => {
    const collection = await createPaymentCollection({ regionId: shop.regionId, amount: 2700 })
    const session = await stripeSession(url, collection.id)
    // This intent captures when the shopper confirms (capture_method automatic, set at Stripe).
    await fakeStripe.client().paymentIntents.update(session.data.id, { capture_method: "automatic" })
    const confirmed = await fakeStripe.confirmSession(session)
    expect(confirmed.payment_intent).toMatchObject({ status: "succeeded", amount_received: 2700 })
    const event = await stripeEvent("payment_intent.succeeded", session.data.id)

    await sendWebhook(url, event)

    await waitForCollectionStatus(collection.id, "authorized")
    const payments = await waitFor("the payment to be recorded captured", async () => {
      const rows = await linkedPayments(collection.id)
      return rows.length === 1 && rows[0].captured_at ? rows : null
    })
    expect(payments).toEqual([expect.objectContaining({ provider_id: "stripe", amount: 2700, captured_at: expect.any(Date) })])
    expect(payments![0].data).toMatchObject({ id: session.data.id, status: "succeeded" })
    expect(await linkedSessions(collection.id)).toEqual([expect.objectContaining({ id: session.id, status: "authorized" })])
    expect(await collectionRow(collection.id)).toMatchObject({ status: "authorized", authorized_amount: 2700 })
  })

  it("the same event delivered three times (two at once) is acted on once: one question to Stripe, one payment", async () => {
    const collection = await createPaymentCollection({ regionId: shop.regionId, amount: 1900 })
    const session = await stripeSession(url, collection.id)
    await fakeStripe.confirmSession(session)
    const event = await stripeEvent("payment_intent.amount_capturable_updated", session.data.id)

    await Promise.all([sendWebhook(url, event), sendWebhook(url, event)])
    await waitForCollectionStatus(collection.id, "authorized")
    await sendWebhook(url, event)
    // Delivered again after it was acted on: the third delivery reaches the plugin too.
    await waitFor("every delivery to reach the subscribers", async () => {
      const { body } = await store.get("/event-recorder/events?event=medusa.stripe_payment_intent_update")
      return body.events.filter((e: any) => e.data?.id === event.id).length >= 3
    })
    await waitForSettledJournal(collection.id)

    expect(await linkedPayments(collection.id)).toEqual([expect.objectContaining({ amount: 1900, provider_id: "stripe" })])
    expect(await statusQuestions(collection.id, session.id)).toHaveLength(1)
    expect(await providerEvents(collection.id)).toEqual([event.id])
    expect(await collectionRow(collection.id)).toMatchObject({ status: "authorized", authorized_amount: 1900 })
  })

  it("events out of order: succeeded before amount_capturable_updated, the intent as Stripe holds it decides", async () => {
    const collection = await createPaymentCollection({ regionId: shop.regionId, amount: 2100 })
    const session = await stripeSession(url, collection.id)
    await fakeStripe.confirmSession(session)
    await fakeStripe.client().paymentIntents.capture(session.data.id)
    const capturable = await stripeEvent("payment_intent.amount_capturable_updated", session.data.id)
    const succeeded = await stripeEvent("payment_intent.succeeded", session.data.id)
    expect(capturable.created).toBeLessThanOrEqual(succeeded.created)
    expect(capturable.data.object.status).toBe("requires_capture")

    // The later event arrives first, the earlier one after it.
    await sendWebhook(url, succeeded)
    await waitForProviderEvent(collection.id, succeeded.id)
    await sendWebhook(url, capturable)
    await waitForProviderEvent(collection.id, capturable.id)
    await waitForSettledJournal(collection.id)

    const payments = await linkedPayments(collection.id)
    expect(payments).toEqual([expect.objectContaining({ amount: 2100, captured_at: expect.any(Date) })])
    expect(payments[0].data).toMatchObject({ status: "succeeded", amount_received: 2100 })
    expect(await collectionRow(collection.id)).toMatchObject({ status: "authorized", authorized_amount: 2100 })
    expect(await providerEvents(collection.id)).toEqual(expect.arrayContaining([succeeded.id, capturable.id]))
  })

  it("an event whose copy of the intent says more than Stripe holds records nothing; the real one later does", async () => {
    const collection = await createPaymentCollection({ regionId: shop.regionId, amount: 2400 })
    const session = await stripeSession(url, collection.id)
    // 3-D Secure pending: nothing is held yet.
    await fakeStripe.confirmSession(session, "requires_action")
    // A stale or forged copy: the event says requires_capture, Stripe says requires_action.
    const early = await fakeStripe.buildEvent("payment_intent.amount_capturable_updated", session.data.id, {
      status: "requires_capture",
      amount_capturable: 2400,
    })

    await sendWebhook(url, early)
    await waitForProviderEvent(collection.id, early.id)
    await waitForSettledJournal(collection.id)

    expect(await collectionRow(collection.id)).toMatchObject({ status: "not_paid" })
    expect(await linkedPayments(collection.id)).toEqual([])
    expect((await linkedSessions(collection.id))[0]).toMatchObject({ id: session.id, payment_authorized_at: null })
    expect(await statusQuestions(collection.id, session.id)).toEqual([expect.objectContaining({ state: "committed" })])

    // The shopper completes 3-D Secure; Stripe's own event follows.
    await fakeStripe.confirmSession(session, "authorized")
    await sendWebhook(url, await stripeEvent("payment_intent.amount_capturable_updated", session.data.id, [early]))

    await waitForCollectionStatus(collection.id, "authorized")
    expect(await linkedPayments(collection.id)).toEqual([expect.objectContaining({ amount: 2400, captured_at: null })])
  })

  // The route answered 200 (it only emits), so Stripe will not retry it; what
  // matters is that a failed handling is not remembered as done, so that a later
  // delivery of the same event (a resend from the dashboard, the Redis event
  // bus's next attempt) is acted on and not taken for a duplicate.
  it("Stripe unreachable when the event is handled: nothing recorded, and a later delivery of that event is acted on", async () => {
    const collection = await createPaymentCollection({ regionId: shop.regionId, amount: 1600 })
    const session = await stripeSession(url, collection.id)
    await fakeStripe.confirmSession(session)
    const event = await stripeEvent("payment_intent.amount_capturable_updated", session.data.id)
    await fakeStripe.faults({ "payment_intents.retrieve": { fail: "api_error", intentId: session.data.id } })

    try {
      await sendWebhook(url, event)
      await waitFor("Stripe to be asked", async () => (await fakeStripe.history({ operation: "payment_intents.retrieve", objectId: session.data.id })).length > 0)
      await waitForSettledJournal(collection.id)
      expect(await collectionRow(collection.id)).toMatchObject({ status: "not_paid" })
      // Not remembered as acted on: Stripe delivers it again (it retries until a 2xx of the route, and after).
      expect(await providerEvents(collection.id)).toEqual([])
    } finally {
      await fakeStripe.faults({ "payment_intents.retrieve": null })
    }
    await sendWebhook(url, event)

    await waitForCollectionStatus(collection.id, "authorized")
    expect(await linkedPayments(collection.id)).toHaveLength(1)
    expect(await providerEvents(collection.id)).toEqual([event.id])
  })

  describe("with complete_order_edit_on_authorization false", () => {
    beforeAll(() => useBackend({ ...WEBHOOK_ONLY, complete_order_edit_on_authorization: false }), 240_000)

    it("the webhook authorizes the collection but leaves the edit to the shopper, whose complete route then confirms it", async () => {
      const { order, edit, collectionId } = await requestEdit(url, shop)
      const session = await stripeSession(url, collectionId)
      await fakeStripe.confirmSession(session)

      await sendWebhook(url, await stripeEvent("payment_intent.amount_capturable_updated", session.data.id))

      await waitForCollectionStatus(collectionId, "authorized")
      await waitForSettledJournal(collectionId)
      // The authorization and the completion would be one transaction: the edit would be confirmed by now.
      expect(await orderEditRow(edit.id)).toMatchObject({ status: "requested", confirmed_at: null })
      expect(await linkedPayments(collectionId)).toEqual([expect.objectContaining({ amount: 4000, order_id: null })])

      const completed = await store.post(`/store/order-edits/${edit.id}/complete`)

      expect(completed.status).toBe(200)
      expect(completed.body.order_edit).toMatchObject({ id: edit.id, status: "confirmed" })
      expect(await linkedPayments(collectionId)).toEqual([expect.objectContaining({ amount: 4000, order_id: order.id })])
    })
  })

  describe("with the status sync on (the default)", () => {
    beforeAll(() => useBackend(SMALL), 240_000)

    it("no webhook at all: the reconciler's status sync records the authorization and completes the edit", async () => {
      const { order, edit, collectionId } = await requestEdit(url, shop)
      const session = await stripeSession(url, collectionId)

      const confirmedAt = Date.now()
      await fakeStripe.confirmSession(session)
      const authorizedAt = await waitForCollectionStatus(collectionId, "authorized")
      const completedAt = await waitForEditStatus(edit.id, "confirmed")
      console.log(
        `status sync (reconcile_interval_ms ${SMALL.reconcile_interval_ms}, no webhook): ms from the shopper's confirmation to the collection authorized ${authorizedAt - confirmedAt}, to the edit completed ${completedAt - confirmedAt}`
      )

      expect(await linkedPayments(collectionId)).toEqual([
        expect.objectContaining({ provider_id: "stripe", amount: 4000, order_id: order.id, captured_at: null }),
      ])
      expect(await providerEvents(collectionId)).toEqual([])
      const rows = await waitForSettledJournal(collectionId)
      expect(rows.filter((r) => r.operation === "status").length).toBeGreaterThanOrEqual(1)
      expect(await fakeStripe.paymentIntent(session.data.id)).toMatchObject({ status: "requires_capture" })
    })

  })

  // Over the local event bus, core's enqueuer hands every event staged in the
  // last 3 s to the subscribers at once, and medusa-payment-stripe 6.0.9's own
  // subscriber of payment_intent.amount_capturable_updated opens a transaction
  // and then queries outside it (orderService.retrieveByCartId): 10 such events
  // at once (TypeORM's pool) leave every connection of the process waiting for
  // an eleventh, for good. So the 20 collections race on the Redis event bus,
  // which a multi-instance shop runs anyway (its workers take one event at a time).
  describe("two backends on the Redis event bus, the status sync off: the webhook and the storefront are the only ones to tell", () => {
    const N = 20
    let redis: TestRedis
    let second: ExtraBackend

    beforeAll(async () => {
      redis = await testRedis()
      await useBackend(WEBHOOK_ONLY, { REDIS_URL: redis.url })
      second = await startExtraBackend({
        env: { ...optionsEnv(WEBHOOK_ONLY), REDIS_URL: redis.url },
        logFile: process.env.PCP_BACKEND_LOG || undefined,
      })
    }, 240_000)

    afterAll(async () => {
      await stopExtraBackends()
      if (redis) {
        await dropRunEventQueue(redis.url)
        await redis.stop()
      }
    }, 60_000)

    it(`webhook and storefront authorize racing on ${N} collections over two backends: one payment each, no 5xx, no intent canceled`, async () => {
      const backends = [backend, second]
      const apis = backends.map((b) => createApi(b.url))
      const amount = (i: number) => 1000 + 10 * i
      const collections = await parallel(N, (i) => createPaymentCollection({ regionId: shop.regionId, amount: amount(i) }))
      // Set up one after the other (20 Stripe creates at once can outlast provider_timeout_ms 1500 on a busy machine).
      const sessions: any[] = []
      for (const [i, collection] of collections.entries()) {
        sessions.push(await stripeSession(backends[i % 2].url, collection.id))
        await fakeStripe.confirmSession(sessions[i])
      }
      const events = await parallel(N, (i) => stripeEvent("payment_intent.amount_capturable_updated", sessions[i].data.id))

      // Every webhook at once, each to the backend that does not serve its
      // storefront; the storefronts' authorize calls spread over the 8 s in which
      // the events are handled (core's enqueuer every 3 s, the package's delay).
      const raced = await parallel(N, async (i) => {
        const [hook, authorize] = await Promise.all([
          fakeStripe.sendWebhook(backends[(i + 1) % 2].url, events[i]),
          sleep(i * 400).then(() =>
            retryWhileBusy(() => apis[i % 2].post(`${base(collections[i].id)}/sessions/${sessions[i].id}/authorize`))
          ),
        ])
        return { hook, authorize }
      })

      expect(raced.map((r) => r.hook.status)).toEqual(Array(N).fill(200))
      expect(statuses(raced.map((r) => r.authorize))).toEqual(Array(N).fill("200"))
      for (const [i, { authorize }] of raced.entries()) {
        expect(authorize.body.payment_session).toMatchObject({ id: sessions[i].id, status: "authorized", amount: amount(i) })
      }
      const ids = collections.map((c) => c.id)
      await waitFor(
        "every event to be acted on",
        async () => {
          const { rows } = await db.query(
            `SELECT count(*)::int AS n FROM payment_collection_provider_event WHERE payment_collection_id = ANY($1)`,
            [ids]
          )
          return rows[0].n === N
        },
        { timeoutMs: 30_000 }
      )
      const journal = await waitForSettledJournal(ids)
      for (const [i, collection] of collections.entries()) {
        expect(await collectionRow(collection.id)).toMatchObject({ status: "authorized", authorized_amount: amount(i) })
        const payments = await linkedPayments(collection.id)
        expect(payments).toEqual([expect.objectContaining({ amount: amount(i), provider_id: "stripe" })])
        expect(payments[0].data.id).toBe(sessions[i].data.id)
      }
      const intents = await fakeStripe.paymentIntents({ resourceId: ids })
      expect(intents.map((intent) => intent.status)).toEqual(Array(N).fill("requires_capture"))
      expect((await fakeStripe.history({ operation: "payment_intents.cancel" })).filter((c) => ids.includes(c.resource_id ?? ""))).toEqual([])
      // Who recorded each authorization: the storefront's authorize call, or the webhook (which asked Stripe and adopted it).
      const byStorefront = ids.filter((id) => journal.some((r) => r.payment_collection_id === id && r.operation === "authorize"))
      console.log(
        `race of webhook and storefront on ${N} collections over two backends: ${byStorefront.length} recorded by the storefront's authorize, ${N - byStorefront.length} by the webhook`
      )
    }, 120_000)
  })
})
