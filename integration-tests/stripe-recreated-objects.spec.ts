import { Api, adminApi, adminHeaders, HttpResponse } from "./helpers/http"
import { createPaymentCollection, createRegion, db, freeCountry } from "./helpers/factories"
import { fakeStripe } from "./helpers/fake-stripe"
import { ExtraBackend, stopExtraBackends } from "./helpers/backend"
import { base, linkedPayments, linkedSessions, orphanSessions } from "./helpers/payments"
import { orderEditSeed, Shop } from "./helpers/order-edit-seed"
import { MODES, Timings, agree, allClosed, providerAndDatabase, startTwoBackends, waitForAgreement, waitForJournal } from "./helpers/provider-agreement"

// The real medusa-payment-stripe 6.0.9 against the fake Stripe API: provider
// objects that an update re-creates, on every path. The package's
// updatePayment never updates a guest's intent: its customer check
// (`undefined` vs the intent's customer) fails, so it makes a new customer and
// a new intent and answers that. The plugin cancels the intent the database
// no longer names — in the request, and when it sets back an update whose
// connection was lost after Stripe acted (the set-back re-creates once more,
// and what the lost call created is found by the built-in finder). For a
// collection that pays an order edit, the order's customer is passed, so the
// package keeps one Stripe customer per Medusa customer.

/**
 * Stripe acted and the call failed all the same. A single reset is not among
 * them: stripe-node sends a request again by itself when its connection was
 * reset (once, and without an Idempotency-Key when maxNetworkRetries is 0, as
 * medusa-payment-stripe configures it), so the second request answers and the
 * first one's intent is never reported as an error at all (RESENT below).
 */
const FAULTS = [
  ["a 500 after Stripe acted", { fail: "api_error" as const, afterEffect: true, times: 1 }],
  ["its connection reset after Stripe acted, on the call and on stripe-node's own retry", { fail: "reset" as const, afterEffect: true, times: 2 }],
] as const

const stripeOk = <T = any>(what: string, res: HttpResponse<T>): T => {
  if (res.status < 200 || res.status >= 300) throw new Error(`${what} answered ${res.status}: ${res.text}`)
  return res.body
}

describe("objects re-created at Stripe by an update are canceled on every path", () => {
  let region: any
  let backends: ExtraBackend[]
  let apis: Api[]
  const timings = new Timings("stripe re-created objects")

  beforeAll(async () => {
    ;({ backends, apis } = await startTwoBackends())
    region = await createRegion({ providers: ["manual", "stripe"] })
  }, 240_000)

  beforeEach(() => fakeStripe.reset())

  afterEach(async () => {
    expect(await orphanSessions()).toEqual([])
  })

  afterAll(async () => {
    timings.print()
    await fakeStripe.reset()
    await stopExtraBackends()
    await db.end()
  }, 60_000)

  async function stripeSessionOn(shop: Api, collectionId: string) {
    const res = await shop.post(`${base(collectionId)}/sessions`, { provider_id: "stripe" })
    return stripeOk("POST /sessions", res).payment_collection.payment_sessions[0]
  }

  describe.each(MODES)("$name", (mode) => {
    const first = () => apis[mode.failing]
    const next = () => apis[mode.next]

    it("a guest's update re-creates the intent: the new one is the session's, the old one is canceled", async () => {
      const collection = await createPaymentCollection({ regionId: region.id, amount: 5000 })
      const session = await stripeSessionOn(first(), collection.id)

      const started = Date.now()
      const res = await next().post(`${base(collection.id)}/sessions/batch`, {
        sessions: [
          { provider_id: "stripe", amount: 3500, session_id: session.id },
          { provider_id: "manual", amount: 1500 },
        ],
      })

      expect(res.status).toBe(200)
      const [updated] = (await linkedSessions(collection.id)).filter((s) => s.provider_id === "stripe")
      expect(updated).toMatchObject({ id: session.id, amount: 3500 })
      expect(updated.data.id).not.toBe(session.data.id)
      expect(await fakeStripe.paymentIntent(session.data.id)).toMatchObject({ status: "canceled" })
      expect(await fakeStripe.paymentIntent(updated.data.id)).toMatchObject({ amount: 3500, status: "requires_payment_method" })
      timings.record(`guest update re-creates (${mode.name})`, "agree (after the request began)", await waitForAgreement(collection.id, started, { provider: "stripe" }))
      await waitForJournal(collection.id, "no open row", allClosed, started)
      expect(await agree(collection.id, "stripe")).toBe(true)
    })

    it.each(FAULTS)("a guest's update gets %s (502): settled, Stripe's live intents are the database's", async (_what, fault) => {
      const collection = await createPaymentCollection({ regionId: region.id, amount: 5000 })
      const session = await stripeSessionOn(first(), collection.id)
      await fakeStripe.faults({ "payment_intents.create": { ...fault, resourceId: collection.id } })
      const batch = {
        sessions: [
          { provider_id: "stripe", amount: 3500, session_id: session.id },
          { provider_id: "manual", amount: 1500 },
        ],
      }

      const res = await next().post(`${base(collection.id)}/sessions/batch`, batch)

      expect({ status: res.status, code: res.body.code }).toEqual({ status: 502, code: "payment_provider_error" })
      const lost = (await fakeStripe.history({ operation: "payment_intents.create", resourceId: collection.id })).filter((c) =>
        c.outcome.startsWith("fault:")
      )
      expect(lost).toHaveLength(fault.times)
      // What the lost calls created (3500) stays unnamed; the set-back re-creates once more (5000).
      const orphans = (await fakeStripe.paymentIntents({ resourceId: collection.id })).filter((i) => i.id !== session.data.id && i.amount === 3500)
      expect(orphans).toHaveLength(fault.times)
      expect((await linkedSessions(collection.id)).map((s) => [s.id, s.amount, s.data.id])).toEqual([[session.id, 5000, session.data.id]])

      const agreedMs = await waitForAgreement(collection.id, lost[0].at, { provider: "stripe" })
      timings.record(`guest update, ${_what} (${mode.name})`, "agree", agreedMs)
      const settled = await waitForJournal(collection.id, "the update and its sweep to be settled", allClosed, lost[0].at)
      timings.record(`guest update, ${_what} (${mode.name})`, "journal closed", settled.ms)
      expect(settled.rows.find((r) => r.operation === "update")).toMatchObject({ state: "undone" })
      expect(settled.rows.filter((r) => r.operation === "find").length).toBeGreaterThanOrEqual(1)
      for (const orphan of orphans) expect(await fakeStripe.paymentIntent(orphan.id)).toMatchObject({ status: "canceled" })
      expect(await providerAndDatabase(collection.id, "stripe")).toEqual({
        provider: [{ id: session.data.id, amount: 5000 }],
        database: [{ id: session.data.id, amount: 5000 }],
      })
      // Every intent of the collection but the session's is canceled: the lost ones and the set-back's.
      const all = await fakeStripe.paymentIntents({ resourceId: collection.id })
      expect(all.filter((i) => i.status !== "canceled").map((i) => i.id)).toEqual([session.data.id])
      expect(all).toHaveLength(1 + fault.times + 1)

      // The shopper goes on: the update goes through this time.
      const retry = await next().post(`${base(collection.id)}/sessions/batch`, batch)
      expect(retry.status).toBe(200)
      await waitForJournal(collection.id, "no open row", allClosed, Date.now())
      expect(await agree(collection.id, "stripe")).toBe(true)
    })

    it.each(FAULTS)(
      "an initiate gets %s (502): the built-in finder lists what it created and cancels it, with Stripe's search lagging a minute",
      async (_what, fault) => {
        await fakeStripe.setSearchLag(60_000)
        const collection = await createPaymentCollection({ regionId: region.id, amount: 2600 })
        await fakeStripe.faults({ "payment_intents.create": { ...fault, resourceId: collection.id } })

        const res = await first().post(`${base(collection.id)}/sessions`, { provider_id: "stripe" })

        expect({ status: res.status, code: res.body.code }).toEqual({ status: 502, code: "payment_provider_error" })
        const lost = (await fakeStripe.history({ operation: "payment_intents.create", resourceId: collection.id })).filter((c) =>
          c.outcome.startsWith("fault:")
        )
        expect(lost).toHaveLength(fault.times)
        const orphans = await fakeStripe.paymentIntents({ resourceId: collection.id })
        expect(orphans.map((i) => i.amount)).toEqual(Array(fault.times).fill(2600))
        timings.record(`initiate, ${_what} (${mode.name})`, "agree", await waitForAgreement(collection.id, lost[0].at, { provider: "stripe" }))
        const settled = await waitForJournal(collection.id, "the initiate to be settled", allClosed, lost[0].at)
        timings.record(`initiate, ${_what} (${mode.name})`, "journal closed", settled.ms)
        expect(settled.rows.find((r) => r.operation === "initiate")).toMatchObject({ state: "undone" })
        for (const orphan of orphans) expect(await fakeStripe.paymentIntent(orphan.id)).toMatchObject({ status: "canceled" })
        // Found by the list endpoint (consistent): search could not have shown them yet.
        expect((await fakeStripe.history({ operation: "payment_intents.list" })).length).toBeGreaterThanOrEqual(1)

        const retry = await next().post(`${base(collection.id)}/sessions`, { provider_id: "stripe" })
        expect(retry.status).toBe(200)
        const { provider, database } = await providerAndDatabase(collection.id, "stripe")
        expect(provider).toHaveLength(1)
        expect(provider).toEqual(database)
      }
    )
  })

  describe("a create stripe-node sent twice on its own (its connection reset once after Stripe acted)", () => {
    const RESENT = { fail: "reset" as const, afterEffect: true, times: 1 }

    /** The collection's intents, in creation order, each with what became of its create call. */
    async function createsOf(collectionId: string) {
      const calls = await fakeStripe.history({ operation: "payment_intents.create", resourceId: collectionId })
      return calls.map((c) => c.outcome)
    }

    it.each(MODES)("$name: a new session answers 200; the copy nobody named is canceled once the rows commit", async (mode) => {
      const collection = await createPaymentCollection({ regionId: region.id, amount: 2700 })
      await fakeStripe.faults({ "payment_intents.create": { ...RESENT, resourceId: collection.id } })
      const started = Date.now()

      const session = await stripeSessionOn(apis[mode.failing], collection.id)

      expect(await createsOf(collection.id)).toEqual(["fault:reset", "ok"])
      const intents = await fakeStripe.paymentIntents({ resourceId: collection.id })
      expect(intents).toHaveLength(2)
      const copy = intents.find((i) => i.id !== session.data.id)!
      expect(copy).toMatchObject({ amount: 2700 })
      const settled = await waitForJournal(collection.id, "the resend sweep", allClosed, started)
      timings.record(`create sent twice by stripe-node (${mode.name})`, "journal closed", settled.ms)
      expect(settled.rows.map((r) => [r.operation, r.state])).toEqual(
        expect.arrayContaining([
          ["initiate", "committed"],
          ["find", "undone"],
        ])
      )
      expect(await fakeStripe.paymentIntent(copy.id)).toMatchObject({ status: "canceled" })
      expect(await fakeStripe.paymentIntent(session.data.id)).toMatchObject({ status: "requires_payment_method" })
      expect(await providerAndDatabase(collection.id, "stripe")).toEqual({
        provider: [{ id: session.data.id, amount: 2700 }],
        database: [{ id: session.data.id, amount: 2700 }],
      })
    })

    it("a guest's update that re-creates the intent answers 200; the copy and the old intent are canceled", async () => {
      const collection = await createPaymentCollection({ regionId: region.id, amount: 5000 })
      const session = await stripeSessionOn(apis[0], collection.id)
      await fakeStripe.faults({ "payment_intents.create": { ...RESENT, resourceId: collection.id } })
      const started = Date.now()

      const res = await apis[1].post(`${base(collection.id)}/sessions/batch`, {
        sessions: [
          { provider_id: "stripe", amount: 3500, session_id: session.id },
          { provider_id: "manual", amount: 1500 },
        ],
      })

      expect(res.status).toBe(200)
      const [updated] = (await linkedSessions(collection.id)).filter((s) => s.provider_id === "stripe")
      expect(updated.data.id).not.toBe(session.data.id)
      expect(await createsOf(collection.id)).toEqual(["ok", "fault:reset", "ok"])
      const copy = (await fakeStripe.paymentIntents({ resourceId: collection.id })).find(
        (i) => i.id !== session.data.id && i.id !== updated.data.id
      )!
      expect(copy).toMatchObject({ amount: 3500 })
      const agreedMs = await waitForAgreement(collection.id, started, { provider: "stripe" })
      timings.record("guest update sent twice by stripe-node", "agree", agreedMs)
      await waitForJournal(collection.id, "no open row", allClosed, started)
      for (const gone of [copy.id, session.data.id]) {
        expect(await fakeStripe.paymentIntent(gone)).toMatchObject({ status: "canceled" })
      }
      expect(await providerAndDatabase(collection.id, "stripe")).toEqual({
        provider: [{ id: updated.data.id, amount: 3500 }],
        database: [{ id: updated.data.id, amount: 3500 }],
      })
    })
  })

  describe("a collection paying an order edit passes the order's customer", () => {
    let shop: Shop

    beforeAll(async () => {
      shop = await orderEditSeed.createShop(apis[0].baseUrl, { adminHeaders: adminHeaders(), countryCode: await freeCountry() })
      stripeOk(
        "POST /admin/regions/:id",
        await adminApi.post(`/admin/regions/${shop.regionId}`, { payment_providers: ["manual", "test-pay", "stripe"] })
      )
    })

    it.each(MODES)("$name: one Stripe customer for the Medusa customer across sessions and collections, stored in the customer's metadata", async (mode) => {
      const url = apis[mode.failing].baseUrl
      const shopper = `stripe-customer-${Date.now()}@example.com`
      const order = await orderEditSeed.placeOrder(url, shop, { email: shopper })
      const customersBefore = (await fakeStripe.customers()).length
      const edit = await orderEditSeed.requestOrderEdit(url, shop, order.id, { adminHeaders: adminHeaders(), quantity: 2 })
      const collectionId: string = edit.payment_collection_id

      // A first session: the package makes the Stripe customer and asks for its id to be kept on the customer.
      const firstSession = await stripeSessionOn(apis[mode.failing], collectionId)
      const { rows: after1 } = await db.query(`SELECT metadata, email FROM customer WHERE id = $1`, [order.customer_id])
      const stripeCustomer = after1[0].metadata?.stripe_id
      expect(stripeCustomer).toMatch(/^cus_/)
      expect(after1[0].email).toBe(shopper)
      expect(await fakeStripe.paymentIntent(firstSession.data.id)).toMatchObject({ customer: stripeCustomer })

      // Refresh (a new intent), then a change of amount (the same customer: updated in place), then a second session.
      const refreshed = stripeOk(
        "refresh",
        await apis[mode.next].post(`${base(collectionId)}/sessions/${firstSession.id}`)
      ).payment_session
      const amount = edit.difference_due as number
      const batch = stripeOk(
        "batch",
        await apis[mode.next].post(`${base(collectionId)}/sessions/batch`, {
          sessions: [
            { provider_id: "stripe", amount: amount - 1000, session_id: refreshed.id },
            { provider_id: "stripe", amount: 1000 },
          ],
        })
      ).payment_collection.payment_sessions
      expect(batch.find((s: any) => s.id === refreshed.id).data.id).toBe(refreshed.data.id)
      expect(
        (await fakeStripe.history({ operation: "payment_intents.update", objectId: refreshed.data.id })).map((c) => c.outcome)
      ).toEqual(["ok"])

      // Another order of the same shopper (core finds the customer by email), edited: another collection, the same Stripe customer.
      const order2 = await orderEditSeed.placeOrder(url, shop, { email: shopper })
      expect(order2.customer_id).toBe(order.customer_id)
      const edit2 = await orderEditSeed.requestOrderEdit(url, shop, order2.id, { adminHeaders: adminHeaders(), quantity: 1 })
      await stripeSessionOn(apis[mode.next], edit2.payment_collection_id)

      await waitForJournal(collectionId, "no open row", allClosed, Date.now())
      await waitForJournal(edit2.payment_collection_id, "no open row", allClosed, Date.now())
      expect((await fakeStripe.customers()).length - customersBefore).toBe(1)
      const intents = await fakeStripe.paymentIntents({ resourceId: [collectionId, edit2.payment_collection_id] })
      expect(intents.length).toBe(4)
      expect(new Set(intents.map((i) => i.customer))).toEqual(new Set([stripeCustomer]))
      expect((await fakeStripe.customers()).find((c) => c.id === stripeCustomer)).toMatchObject({ email: shopper })
      expect(await agree(collectionId, "stripe")).toBe(true)
      expect(await agree(edit2.payment_collection_id, "stripe")).toBe(true)
      expect(await linkedPayments(collectionId)).toEqual([])
    })
  })
})
