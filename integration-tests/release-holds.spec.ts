import { Api, adminHeaders, createApi } from "./helpers/http"
import { db } from "./helpers/factories"
import { replaceTestEnv } from "./helpers/env"
import { ExtraBackend, startExtraBackend } from "./helpers/backend"
import { fakeStripe } from "./helpers/fake-stripe"
import { psp } from "./helpers/fake-psp"
import { waitForSettledJournal } from "./helpers/journal"
import { base, collectionRow, linkedPayments, linkedSessions, sleep, waitFor } from "./helpers/payments"
import { Shop } from "./helpers/order-edit-seed"
import { OwnDatabase, useOwnDatabase } from "./helpers/own-database"
import { createStripeShop, orderEditRow, requestEdit } from "./helpers/stripe-shop"

// Holds released: an order edit the shopper declines (POST
// /store/order-edits/:id/decline) or the admin cancels (POST
// /admin/order-edits/:id/cancel) after its collection was authorized no longer
// keeps the money on the shopper's card until the provider lets it lapse (7
// days for a card): the authorizations are canceled at their providers — the
// real medusa-payment-stripe against the fake Stripe API, and test-pay against
// the fake PSP — journaled, retried until done, the payments marked canceled.
//
// On a database of its own, with the status sync off: the storefront's own
// authorize records the payments here (the sync would record them as soon as
// the shopper confirms and complete the edit, which then could no longer be
// declined), and the backend with release_holds false must be the only one to
// hear the edit's events (every backend's event enqueuer takes the events
// staged in its database).

const OPTIONS = { reconcile_interval_ms: 500, provider_timeout_ms: 1500, finder_settle_ms: 1000, status_sync_window_hours: 0 }
const STRIPE_SHARE = 2500
const TEST_PAY_SHARE = 1500

describe("the holds of a declined or canceled order edit are released at the providers", () => {
  let own: OwnDatabase
  let backend: ExtraBackend
  let url: string
  let store: Api
  let admin: Api
  let shop: Shop

  async function useBackend(options: Record<string, unknown>): Promise<void> {
    await backend?.stop()
    backend = await startExtraBackend({
      env: { PAYMENT_COLLECTIONS_OPTIONS: JSON.stringify(options) },
      logFile: process.env.PCP_BACKEND_LOG || undefined,
    })
    url = backend.url
    store = createApi(url)
    admin = createApi(url, adminHeaders())
    replaceTestEnv({ backendUrl: url })
  }

  beforeAll(async () => {
    own = await useOwnDatabase("holds")
    await useBackend(OPTIONS)
    shop = await createStripeShop(url)
  }, 240_000)

  afterAll(async () => {
    await fakeStripe.faults({ "payment_intents.cancel": null })
    await psp.behaviour({ cancelPayment: null })
    await own?.drop()
  }, 60_000)

  /** An order edit whose 4000 the shopper paid 2500 with Stripe and 1500 with test-pay, authorized, not completed. */
  async function authorizedEdit() {
    const { order, edit, collectionId, due } = await requestEdit(url, shop)
    expect(due).toBe(STRIPE_SHARE + TEST_PAY_SHARE)
    const batch = await store.post(`${base(collectionId)}/sessions/batch`, {
      sessions: [
        { provider_id: "stripe", amount: STRIPE_SHARE },
        { provider_id: "test-pay", amount: TEST_PAY_SHARE },
      ],
    })
    expect(batch.status).toBe(200)
    const sessions: any[] = batch.body.payment_collection.payment_sessions
    const stripeSession = sessions.find((s) => s.provider_id === "stripe")
    const testPaySession = sessions.find((s) => s.provider_id === "test-pay")
    await fakeStripe.confirmSession(stripeSession)
    await psp.confirmSession(testPaySession)
    const authorized = await store.post(`${base(collectionId)}/sessions/batch/authorize`, { session_ids: sessions.map((s) => s.id) })
    expect(authorized.status).toBe(200)
    expect(authorized.body.payment_collection).toMatchObject({ status: "authorized", authorized_amount: 4000 })
    expect(await orderEditRow(edit.id)).toMatchObject({ status: "requested" })
    return { order, edit, collectionId, intentId: String(stripeSession.data.id), pspIntentId: String(testPaySession.data.id) }
  }

  type Paid = Awaited<ReturnType<typeof authorizedEdit>>

  /** Waits until Stripe and the PSP both hold nothing for the edit any more; answers when (Date.now()). */
  async function waitForHoldsReleased(paid: Paid, timeoutMs = 20_000): Promise<number> {
    return waitFor(
      "both authorizations to be canceled at their providers",
      async () => {
        const [intent, pspIntent] = await Promise.all([fakeStripe.paymentIntent(paid.intentId), psp.intent(paid.pspIntentId)])
        return intent.status === "canceled" && pspIntent.status === "canceled" ? Date.now() : 0
      },
      { timeoutMs, intervalMs: 50 }
    )
  }

  /** What the database, the attempt log and the admin's order widget show once the holds are released. */
  async function expectReleased(paid: Paid, editStatus: "declined" | "canceled"): Promise<void> {
    const journal = await waitForSettledJournal(paid.collectionId)
    expect(journal.filter((r) => r.operation === "cancel").map((r) => [r.provider_id, r.state]).sort()).toEqual([
      ["stripe", "committed"],
      ["test-pay", "committed"],
    ])
    const payments = await linkedPayments(paid.collectionId)
    expect(payments.map((p) => [p.provider_id, p.amount])).toEqual(
      expect.arrayContaining([
        ["stripe", STRIPE_SHARE],
        ["test-pay", TEST_PAY_SHARE],
      ])
    )
    for (const payment of payments) {
      expect(payment).toMatchObject({ canceled_at: expect.any(Date), captured_at: null })
    }
    expect(await collectionRow(paid.collectionId)).toMatchObject({ status: "canceled" })
    expect((await linkedSessions(paid.collectionId)).map((s) => s.status)).toEqual(["canceled", "canceled"])
    expect(await fakeStripe.paymentIntent(paid.intentId)).toMatchObject({ status: "canceled", amount_capturable: 0 })

    const widget = await admin.get(`/admin/orders/${paid.order.id}/payment-collections`)
    expect(widget.status).toBe(200)
    const [collection] = widget.body.payment_collections
    expect(collection).toMatchObject({ id: paid.collectionId, status: "canceled", order_edit: { status: editStatus } })
    expect(collection.payments).toHaveLength(2)
    for (const payment of collection.payments) {
      expect(payment).toMatchObject({ canceled_at: expect.any(String), captured_at: null })
    }
    const cancels = collection.attempts.attempts.filter((a: any) => a.operation === "cancel")
    expect(cancels.map((a: any) => [a.provider_id, a.state]).sort()).toEqual([
      ["stripe", "committed"],
      ["test-pay", "committed"],
    ])
  }

  it("declined by the shopper: both authorizations canceled at Stripe and the PSP, the payments canceled", async () => {
    const paid = await authorizedEdit()

    const declinedAt = Date.now()
    const declined = await store.post(`/store/order-edits/${paid.edit.id}/decline`, { declined_reason: "Not what I wanted" })

    expect(declined.status).toBe(200)
    expect(declined.body.order_edit).toMatchObject({ id: paid.edit.id, status: "declined" })
    const releasedAt = await waitForHoldsReleased(paid)
    console.log(`release holds: ms from POST /store/order-edits/:id/decline to both holds released ${releasedAt - declinedAt}`)
    await expectReleased(paid, "declined")
    expect((await fakeStripe.history({ operation: "payment_intents.cancel", objectId: paid.intentId })).map((c) => c.outcome)).toEqual([
      "ok",
    ])
  })

  it("canceled by the admin: both authorizations canceled at Stripe and the PSP, the payments canceled", async () => {
    const paid = await authorizedEdit()

    const canceledAt = Date.now()
    const canceled = await admin.post(`/admin/order-edits/${paid.edit.id}/cancel`)

    expect(canceled.status).toBe(200)
    expect(canceled.body.order_edit).toMatchObject({ id: paid.edit.id, status: "canceled" })
    const releasedAt = await waitForHoldsReleased(paid)
    console.log(`release holds: ms from POST /admin/order-edits/:id/cancel to both holds released ${releasedAt - canceledAt}`)
    await expectReleased(paid, "canceled")
  })

  it("a cancel that fails at first (Stripe 500, the PSP throwing) is retried until done", async () => {
    const paid = await authorizedEdit()
    await fakeStripe.faults({ "payment_intents.cancel": { fail: "api_error", times: 2, intentId: paid.intentId } })
    await psp.behaviour({ cancelPayment: { fail: "throw", times: 2, intentId: paid.pspIntentId } })

    const declinedAt = Date.now()
    const declined = await store.post(`/store/order-edits/${paid.edit.id}/decline`, { declined_reason: "Too expensive" })

    expect(declined.status).toBe(200)
    const releasedAt = await waitForHoldsReleased(paid, 30_000)
    console.log(`release holds, each cancel failing twice first: ms from the decline to both holds released ${releasedAt - declinedAt}`)
    await expectReleased(paid, "declined")
    expect((await fakeStripe.history({ operation: "payment_intents.cancel", objectId: paid.intentId })).map((c) => c.outcome)).toEqual([
      "fault:api_error",
      "fault:api_error",
      "ok",
    ])
    expect((await psp.history({ method: "cancelPayment", intentId: paid.pspIntentId })).map((c) => c.outcome)).toEqual([
      "threw",
      "threw",
      "ok",
    ])
    const { rows } = await db.query(
      `SELECT provider_id, recovery_attempts FROM payment_collection_attempt
        WHERE payment_collection_id = $1 AND operation = 'cancel' ORDER BY provider_id`,
      [paid.collectionId]
    )
    expect(rows).toEqual([
      { provider_id: "stripe", recovery_attempts: expect.any(Number) },
      { provider_id: "test-pay", recovery_attempts: expect.any(Number) },
    ])
    for (const row of rows) expect(row.recovery_attempts).toBeGreaterThanOrEqual(2)
  })

  describe("with release_holds false", () => {
    beforeAll(() => useBackend({ ...OPTIONS, release_holds: false }), 240_000)

    it("a declined edit keeps its authorizations: nothing is canceled at the providers", async () => {
      const paid = await authorizedEdit()

      const declined = await store.post(`/store/order-edits/${paid.edit.id}/decline`, { declined_reason: "No thanks" })

      expect(declined.status).toBe(200)
      // The event went to the subscribers (core's enqueuer took it from staged_job), and a few reconciler passes went by.
      await waitFor(
        "order-edit.declined to be handed to the subscribers",
        async () => {
          const { rows } = await db.query(`SELECT count(*)::int AS n FROM staged_job WHERE event_name = 'order-edit.declined'`)
          return rows[0].n === 0
        },
        { timeoutMs: 15_000 }
      )
      await sleep(2 * OPTIONS.reconcile_interval_ms + 500)
      expect(await fakeStripe.paymentIntent(paid.intentId)).toMatchObject({ status: "requires_capture", amount_capturable: STRIPE_SHARE })
      expect(await psp.intent(paid.pspIntentId)).toMatchObject({ status: "authorized" })
      expect(await collectionRow(paid.collectionId)).toMatchObject({ status: "authorized", authorized_amount: 4000 })
      for (const payment of await linkedPayments(paid.collectionId)) expect(payment).toMatchObject({ canceled_at: null })
      expect((await waitForSettledJournal(paid.collectionId)).filter((r) => r.operation === "cancel")).toEqual([])
      expect(await orderEditRow(paid.edit.id)).toMatchObject({ status: "declined" })
    })
  })
})
