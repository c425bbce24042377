import { ExtraBackend, startExtraBackend, stopExtraBackends } from "./helpers/backend"
import { Api, createApi } from "./helpers/http"
import { createPaymentCollection, createRegion, db } from "./helpers/factories"
import { psp } from "./helpers/fake-psp"
import { base, collectionRow, installFailingTrigger, linkedPayments, linkedSessions, retryWhileBusy, waitFor } from "./helpers/payments"

// With Stripe- or PayPal-like providers, authorizePayment only reads a
// confirmation the shopper made in the browser, and cancelPayment is final:
// canceling it voids a real payment. Whatever else fails in a request — another
// provider's crash, a timeout, a failed database write — an authorization a
// provider reported is kept at the provider and recorded in the database.

const PROVIDER_TIMEOUT_MS = 1000

describe("a confirmed authorization is never voided", () => {
  let backend: ExtraBackend
  let shop: Api
  let region: any

  beforeAll(async () => {
    backend = await startExtraBackend({
      env: {
        PAYMENT_COLLECTIONS_OPTIONS: JSON.stringify({
          provider_timeout_ms: PROVIDER_TIMEOUT_MS,
          lock_timeout_ms: 2000,
          reconcile_interval_ms: 500,
          finder_settle_ms: 1000,
        }),
      },
    })
    shop = createApi(backend.url)
    region = await createRegion({ providers: ["manual", "test-pay", "test-legacy", "test-fields"] })
  }, 180_000)

  beforeEach(() => psp.reset())

  afterAll(async () => {
    await psp.reset()
    await stopExtraBackends()
    await db.end()
  }, 60_000)

  /** A collection split over the card provider (test-pay) and `other`, each session as the database has it. */
  async function splitCollection(other: string, amounts = { card: 600, other: 400 }) {
    const collection = await createPaymentCollection({ regionId: region.id, amount: amounts.card + amounts.other })
    const res = await shop.post(`${base(collection.id)}/sessions/batch`, {
      sessions: [
        { provider_id: "test-pay", amount: amounts.card },
        { provider_id: other, amount: amounts.other },
      ],
    })
    expect(res.status).toBe(200)
    const sessions = res.body.payment_collection.payment_sessions
    return {
      collection,
      card: sessions.find((s: any) => s.provider_id === "test-pay"),
      other: sessions.find((s: any) => s.provider_id === other),
    }
  }

  async function journal(collectionId: string) {
    const { rows } = await db.query(
      `SELECT provider_id, operation, state, outcome FROM payment_collection_attempt
        WHERE payment_collection_id = $1 ORDER BY created_at, id`,
      [collectionId]
    )
    return rows
  }

  describe.each([
    ["test-fields", "throw", 502, "payment_provider_error"],
    ["test-legacy", "throw", 502, "payment_provider_error"],
    ["test-fields", "hang", 504, "payment_provider_timeout"],
  ] as const)("a batch over the card and %s, whose authorize does %s", (other, fail, status, code) => {
    it("keeps the card's authorization at the provider and in the database, and names the failing provider", async () => {
      const { collection, card, other: second } = await splitCollection(other)
      await psp.confirmSession(card)
      await psp.confirmSession(second)
      await psp.behaviour({ authorizePayment: { fail, provider: other } })

      const res = await shop.post(`${base(collection.id)}/sessions/batch/authorize`, {
        session_ids: [card.id, second.id],
      })

      expect({ status: res.status, type: res.body.type, code: res.body.code }).toEqual({
        status,
        type: "unexpected_state",
        code,
      })
      expect(res.body.message).toContain(other)
      const sessions = await linkedSessions(collection.id)
      expect(sessions.find((s) => s.id === card.id)).toMatchObject({ status: "authorized" })
      const payments = await linkedPayments(collection.id)
      if (fail === "throw") {
        // A crash may follow an effect: the request asked the provider's status
        // before answering, found the shopper's confirmation and recorded it too.
        expect(sessions.find((s) => s.id === second.id)).toMatchObject({ status: "authorized" })
        expect(payments.map((p) => p.provider_id).sort()).toEqual([other, "test-pay"].sort())
        expect(await collectionRow(collection.id)).toMatchObject({ status: "authorized", authorized_amount: 1000 })
      } else {
        // Still in flight: only its answer, or its lease running out, settles it.
        expect(sessions.find((s) => s.id === second.id)).toMatchObject({ status: "pending" })
        expect(payments.map((p) => ({ provider_id: p.provider_id, amount: p.amount }))).toEqual([
          { provider_id: "test-pay", amount: 600 },
        ])
        expect(await collectionRow(collection.id)).toMatchObject({ status: "partially_authorized", authorized_amount: 600 })
      }
      expect(await psp.intent(card.data.id)).toMatchObject({ status: "authorized" })
      expect(await psp.history({ intentId: card.data.id, method: "cancelPayment" })).toEqual([])

      // The shopper retries once the other provider is back: both are authorized, the card only once.
      await psp.behaviour({ authorizePayment: null })
      const retry = await retryWhileBusy(() =>
        shop.post(`${base(collection.id)}/sessions/batch/authorize`, { session_ids: [card.id, second.id] })
      )
      expect(retry.status).toBe(200)
      expect(retry.body.payment_collection).toMatchObject({ status: "authorized", authorized_amount: 1000 })
      expect(await linkedPayments(collection.id)).toHaveLength(2)
      expect(await psp.history({ intentId: card.data.id, method: "authorizePayment" })).toHaveLength(1)
    })
  })

  it("an authorize that times out and is retried: one authorization, recorded once, never canceled when the late answer comes", async () => {
    const collection = await createPaymentCollection({ regionId: region.id, amount: 900 })
    const created = await shop.post(`${base(collection.id)}/sessions`, { provider_id: "test-pay" })
    const session = created.body.payment_collection.payment_sessions[0]
    await psp.confirmSession(session)
    await psp.behaviour({ authorizePayment: { delayMs: PROVIDER_TIMEOUT_MS * 3, times: 1 } })

    const first = await shop.post(`${base(collection.id)}/sessions/${session.id}/authorize`)
    expect({ status: first.status, code: first.body.code }).toEqual({ status: 504, code: "payment_provider_timeout" })

    // One call at a time on a session: the retry waits for the first call; once its
    // lease is over the retry settles it by asking the provider, and answers.
    const retry = await retryWhileBusy(() => shop.post(`${base(collection.id)}/sessions/${session.id}/authorize`))
    expect(retry.status).toBe(200)
    expect(retry.body.payment_session).toMatchObject({ id: session.id, status: "authorized" })
    expect(await psp.history({ intentId: session.data.id, method: "authorizePayment" })).toHaveLength(1)

    // The first call answers now; the plugin adopts it (already recorded), never cancels.
    await waitFor(
      "the late answer to be finished",
      async () => (await journal(collection.id)).every((row) => !["started", "answered", "uncertain"].includes(row.state)),
      { timeoutMs: PROVIDER_TIMEOUT_MS * 10 }
    )
    expect(await psp.intent(session.data.id)).toMatchObject({ status: "authorized" })
    expect(await psp.history({ intentId: session.data.id, method: "cancelPayment" })).toEqual([])
    expect(await psp.history({ intentId: session.data.id, method: "deletePayment" })).toEqual([])
    expect(await linkedPayments(collection.id)).toHaveLength(1)
    expect(await collectionRow(collection.id)).toMatchObject({ status: "authorized", authorized_amount: 900 })
    const authorizations = (await journal(collection.id)).filter((row) => row.operation === "authorize")
    expect(authorizations.map((row) => row.state)).toEqual(["adopted"])
  })

  it("an authorize whose answer comes after the timeout, with no retry: the late authorization is recorded (adopted)", async () => {
    const collection = await createPaymentCollection({ regionId: region.id, amount: 800 })
    const created = await shop.post(`${base(collection.id)}/sessions`, { provider_id: "test-pay" })
    const session = created.body.payment_collection.payment_sessions[0]
    await psp.confirmSession(session)
    await psp.behaviour({ authorizePayment: { delayMs: PROVIDER_TIMEOUT_MS * 2, times: 1 } })

    const res = await shop.post(`${base(collection.id)}/sessions/${session.id}/authorize`)
    expect(res.status).toBe(504)
    expect(await linkedPayments(collection.id)).toEqual([])

    await waitFor("the late authorization to be recorded", async () => (await linkedPayments(collection.id)).length === 1, {
      timeoutMs: PROVIDER_TIMEOUT_MS * 10,
    })
    expect((await linkedSessions(collection.id))[0]).toMatchObject({ id: session.id, status: "authorized" })
    expect(await collectionRow(collection.id)).toMatchObject({ status: "authorized", authorized_amount: 800 })
    expect(await psp.intent(session.data.id)).toMatchObject({ status: "authorized" })
    expect((await journal(collection.id)).find((row) => row.operation === "authorize")).toMatchObject({
      state: "adopted",
      outcome: "ok",
    })
  })

  it("a database write that fails after the provider authorized: the authorization is recorded afterwards, not canceled", async () => {
    const collection = await createPaymentCollection({ regionId: region.id, amount: 700 })
    const created = await shop.post(`${base(collection.id)}/sessions`, { provider_id: "test-pay" })
    const session = created.body.payment_collection.payment_sessions[0]
    await psp.confirmSession(session)
    const drop = await installFailingTrigger("payment", "INSERT", `NEW.provider_id = 'test-pay'`)
    try {
      const res = await shop.post(`${base(collection.id)}/sessions/${session.id}/authorize`)
      expect(res.status).toBe(500)
      expect(await linkedPayments(collection.id)).toEqual([])
    } finally {
      await drop()
    }

    // The reconciler records what the provider reported once the database takes it.
    await waitFor("the authorization to be adopted", async () => (await linkedPayments(collection.id)).length === 1, {
      timeoutMs: 20_000,
    })
    expect(await psp.intent(session.data.id)).toMatchObject({ status: "authorized" })
    expect(await psp.history({ intentId: session.data.id, method: "cancelPayment" })).toEqual([])
    expect(await collectionRow(collection.id)).toMatchObject({ status: "authorized", authorized_amount: 700 })
    expect((await journal(collection.id)).find((row) => row.operation === "authorize")).toMatchObject({ state: "adopted" })
  })
})
