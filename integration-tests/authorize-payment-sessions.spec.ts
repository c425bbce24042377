import { api } from "./helpers/http"
import { createPaymentCollection, createRegion, db } from "./helpers/factories"
import { psp } from "./helpers/fake-psp"
import { waitForEvents } from "./helpers/events"

const PLUGIN_HEADER = "x-payment-collections-plugin"
const PAYMENT_AUTHORIZED = "payment-collection.payment_authorized"

function authorizeBatch(collectionId: string, body: unknown) {
  return api.post(`/store/payment-collections/${collectionId}/sessions/batch/authorize`, body)
}

function authorizeOne(collectionId: string, sessionId: string) {
  return api.post(`/store/payment-collections/${collectionId}/sessions/${sessionId}/authorize`)
}

async function collectionRow(collectionId: string) {
  const { rows } = await db.query(`SELECT status, authorized_amount FROM payment_collection WHERE id = $1`, [collectionId])
  return rows[0]
}

async function sessionRow(sessionId: string) {
  const { rows } = await db.query(
    `SELECT id, status, amount, payment_authorized_at, data FROM payment_session WHERE id = $1`,
    [sessionId]
  )
  return rows[0]
}

/** The payments linked to the collection (payment_collection_payments), smallest first. */
async function linkedPayments(collectionId: string) {
  const { rows } = await db.query(
    `SELECT p.* FROM payment p
       JOIN payment_collection_payments pcp ON pcp.payment_id = p.id
      WHERE pcp.payment_collection_id = $1
      ORDER BY p.amount, p.created_at`,
    [collectionId]
  )
  return rows
}

describe("Authorize Payment Sessions", () => {
  let region: any

  beforeAll(async () => {
    region = await createRegion({ providers: ["manual", "test-pay"] })
  })

  beforeEach(() => psp.reset())

  afterAll(() => db.end())

  /** A collection with sessions set through the batch endpoint; returns them by provider. */
  async function collectionWith(amount: number, sessions: { provider_id: string; amount: number }[]) {
    const collection = await createPaymentCollection({ regionId: region.id, amount })
    const res = await api.post(`/store/payment-collections/${collection.id}/sessions/batch`, { sessions })
    expect(res.status).toBe(200)
    const list: any[] = res.body.payment_collection.payment_sessions
    return {
      collection,
      sessions: list,
      manual: list.find((s) => s.provider_id === "manual"),
      tp: list.find((s) => s.provider_id === "test-pay"),
    }
  }

  describe("POST /store/payment-collections/:id/sessions/batch/authorize", () => {
    it("authorizes the listed sessions → 200 { payment_collection }, one payment per session, from the plugin's route", async () => {
      const { collection, manual, tp } = await collectionWith(1000, [
        { provider_id: "manual", amount: 600 },
        { provider_id: "test-pay", amount: 400 },
      ])
      await psp.confirmSession(tp)

      const res = await authorizeBatch(collection.id, { session_ids: [manual.id, tp.id] })

      expect(res.status).toBe(200)
      expect(res.headers[PLUGIN_HEADER]).toMatch(/^medusa-plugin-payment-collections@/)
      const pc = res.body.payment_collection
      expect(pc).toMatchObject({ id: collection.id, status: "authorized", authorized_amount: 1000, amount: 1000 })
      // Core answers the collection with payment_sessions and payments (no region).
      expect(pc.payments.map((p: any) => [p.provider_id, p.amount]).sort()).toEqual([
        ["manual", 600],
        ["test-pay", 400],
      ])
      expect(pc.payment_sessions).toHaveLength(2)
      for (const s of pc.payment_sessions) {
        expect(s.status).toBe("authorized")
        expect(Date.parse(s.payment_authorized_at)).not.toBeNaN()
      }

      expect(await collectionRow(collection.id)).toEqual({ status: "authorized", authorized_amount: 1000 })
      const payments = await linkedPayments(collection.id)
      expect(payments).toEqual([
        expect.objectContaining({ amount: 400, provider_id: "test-pay", currency_code: "usd", order_id: null, cart_id: null }),
        expect.objectContaining({ amount: 600, provider_id: "manual", currency_code: "usd", order_id: null, cart_id: null }),
      ])
      expect(payments[0].data).toMatchObject({ id: tp.data.id, status: "authorized" })
      const state = await psp.state()
      expect(state.calls.authorizePayment).toBe(1)
      expect(state.intents).toEqual([expect.objectContaining({ id: tp.data.id, status: "authorized" })])
    })

    it("goes not_paid → partially_authorized → authorized, authorized_amount = sum of the authorized sessions", async () => {
      const { collection, manual, tp } = await collectionWith(1000, [
        { provider_id: "manual", amount: 700 },
        { provider_id: "test-pay", amount: 300 },
      ])
      expect(await collectionRow(collection.id)).toEqual({ status: "not_paid", authorized_amount: null })
      await psp.confirmSession(tp)

      const first = await authorizeBatch(collection.id, { session_ids: [tp.id] })
      expect(first.status).toBe(200)
      expect(first.body.payment_collection).toMatchObject({ status: "partially_authorized", authorized_amount: 300 })
      expect(await collectionRow(collection.id)).toEqual({ status: "partially_authorized", authorized_amount: 300 })
      expect((await sessionRow(manual.id)).status).toBe("pending")

      const second = await authorizeBatch(collection.id, { session_ids: [manual.id] })
      expect(second.status).toBe(200)
      expect(second.body.payment_collection).toMatchObject({ status: "authorized", authorized_amount: 1000 })
      expect((await linkedPayments(collection.id)).map((p) => p.amount)).toEqual([300, 700])
    })

    it("never sends an authorized session to its provider again, nor makes a second payment", async () => {
      const { collection, tp } = await collectionWith(500, [{ provider_id: "test-pay", amount: 500 }])
      await psp.confirmSession(tp)
      expect((await authorizeBatch(collection.id, { session_ids: [tp.id] })).status).toBe(200)

      const again = await authorizeBatch(collection.id, { session_ids: [tp.id] })

      expect(again.status).toBe(200)
      expect(again.body.payment_collection).toMatchObject({ status: "authorized", authorized_amount: 500 })
      expect((await psp.state()).calls.authorizePayment).toBe(1)
      expect(await linkedPayments(collection.id)).toHaveLength(1)
    })

    it("a provider that refuses → 422 payment_authorization_error; the other sessions' results are kept", async () => {
      const { collection, manual, tp } = await collectionWith(1000, [
        { provider_id: "manual", amount: 600 },
        { provider_id: "test-pay", amount: 400 },
      ])
      await psp.behaviour({ authorizePayment: { fail: "refuse" } })

      const res = await authorizeBatch(collection.id, { session_ids: [manual.id, tp.id] })

      expect(res.status).toBe(422)
      expect(res.body.type).toBe("payment_authorization_error")
      expect(res.body.message).toContain(tp.id)
      expect(await collectionRow(collection.id)).toEqual({ status: "partially_authorized", authorized_amount: 600 })
      expect((await sessionRow(manual.id)).status).toBe("authorized")
      expect((await sessionRow(tp.id)).status).toBe("error")
      expect((await linkedPayments(collection.id)).map((p) => [p.provider_id, p.amount])).toEqual([["manual", 600]])
    })

    it("a session whose shopper has not confirmed the payment → 200 but nothing authorized: awaiting, no payment (as core)", async () => {
      const { collection, tp } = await collectionWith(400, [{ provider_id: "test-pay", amount: 400 }])

      const res = await authorizeBatch(collection.id, { session_ids: [tp.id] })

      expect(res.status).toBe(200)
      expect(res.body.payment_collection).toMatchObject({ status: "awaiting", authorized_amount: 0 })
      expect(res.body.payment_collection.payment_sessions[0]).toMatchObject({ id: tp.id, status: "pending" })
      expect(await linkedPayments(collection.id)).toEqual([])
      expect(await psp.intent(tp.data.id)).toMatchObject({ status: "pending" })
    })

    it("a provider that answers requires_more → 200 but nothing authorized: awaiting, no payment (as core)", async () => {
      const { collection, tp } = await collectionWith(400, [{ provider_id: "test-pay", amount: 400 }])
      // The shopper's bank asks for 3-D Secure: the payment needs more action.
      await psp.confirmSession(tp, "requires_more")

      const res = await authorizeBatch(collection.id, { session_ids: [tp.id] })

      expect(res.status).toBe(200)
      expect(res.body.payment_collection).toMatchObject({ status: "awaiting", authorized_amount: 0 })
      expect(res.body.payment_collection.payment_sessions[0]).toMatchObject({ id: tp.id, status: "requires_more" })
      expect(await collectionRow(collection.id)).toEqual({ status: "awaiting", authorized_amount: 0 })
      expect((await sessionRow(tp.id)).payment_authorized_at).toBeNull()
      expect(await linkedPayments(collection.id)).toEqual([])
    })

    it("retrying after a refused authorization succeeds", async () => {
      const { collection, tp } = await collectionWith(400, [{ provider_id: "test-pay", amount: 400 }])
      await psp.confirmSession(tp)
      await psp.behaviour({ authorizePayment: { fail: "refuse", times: 1 } })
      const refused = await authorizeBatch(collection.id, { session_ids: [tp.id] })
      expect(refused.status).toBe(422)
      expect(refused.body.type).toBe("payment_authorization_error")
      expect(await collectionRow(collection.id)).toEqual({ status: "awaiting", authorized_amount: 0 })

      const retried = await authorizeBatch(collection.id, { session_ids: [tp.id] })

      expect(retried.status).toBe(200)
      expect(retried.body.payment_collection).toMatchObject({ status: "authorized", authorized_amount: 400 })
      expect((await sessionRow(tp.id)).status).toBe("authorized")
      expect(await linkedPayments(collection.id)).toHaveLength(1)
      expect((await psp.state()).calls.authorizePayment).toBe(2)
    })

    it("a session id that is not the collection's → 404 not_found; nothing is authorized, the other session untouched", async () => {
      const mine = await collectionWith(300, [{ provider_id: "test-pay", amount: 300 }])
      const other = await collectionWith(300, [{ provider_id: "test-pay", amount: 300 }])

      const res = await authorizeBatch(mine.collection.id, { session_ids: [mine.tp.id, other.tp.id] })

      expect(res.status).toBe(404)
      expect(res.body.type).toBe("not_found")
      expect((await psp.state()).calls.authorizePayment).toBe(0)
      expect((await sessionRow(mine.tp.id)).status).toBe("pending")
      expect((await sessionRow(other.tp.id)).status).toBe("pending")
      expect(await collectionRow(mine.collection.id)).toEqual({ status: "not_paid", authorized_amount: null })
      expect(await collectionRow(other.collection.id)).toEqual({ status: "not_paid", authorized_amount: null })
    })

    it("a session id that does not exist → 404 not_found", async () => {
      const { collection } = await collectionWith(300, [{ provider_id: "manual", amount: 300 }])
      const res = await authorizeBatch(collection.id, { session_ids: ["ps_does_not_exist"] })
      expect(res.status).toBe(404)
      expect(res.body.type).toBe("not_found")
    })

    it.each<[string, unknown]>([
      ["no session_ids", {}],
      ["an empty list", { session_ids: [] }],
      ["a number in the list", { session_ids: [42] }],
      ["session_ids not a list", { session_ids: "ps_1" }],
      ["an unknown property", { session_ids: ["ps_1"], amount: 5 }],
    ])("%s → 400 invalid_data", async (_name, body) => {
      const { collection } = await collectionWith(300, [{ provider_id: "test-pay", amount: 300 }])
      const res = await authorizeBatch(collection.id, body)
      expect(res.status).toBe(400)
      expect(res.body.type).toBe("invalid_data")
      expect((await psp.state()).calls.authorizePayment).toBe(0)
    })

    it("a canceled collection → 400 not_allowed, nothing authorized", async () => {
      const { collection, tp } = await collectionWith(300, [{ provider_id: "test-pay", amount: 300 }])
      await db.query(`UPDATE payment_collection SET status = 'canceled' WHERE id = $1`, [collection.id])

      const res = await authorizeBatch(collection.id, { session_ids: [tp.id] })

      expect(res.status).toBe(400)
      expect(res.body.type).toBe("not_allowed")
      expect((await psp.state()).calls.authorizePayment).toBe(0)
      expect((await sessionRow(tp.id)).status).toBe("pending")
      expect(await linkedPayments(collection.id)).toEqual([])
    })

    it("an unknown collection → 404 not_found", async () => {
      const res = await authorizeBatch("paycol_does_not_exist", { session_ids: ["ps_1"] })
      expect(res.status).toBe(404)
      expect(res.body.type).toBe("not_found")
    })
  })

  describe("POST /store/payment-collections/:id/sessions/:session_id/authorize", () => {
    it("authorizes the session → 200 { payment_session }, linked to one payment, from the plugin's route", async () => {
      const { collection, tp } = await collectionWith(800, [{ provider_id: "test-pay", amount: 800 }])
      await psp.confirmSession(tp)

      const res = await authorizeOne(collection.id, tp.id)

      expect(res.status).toBe(200)
      expect(res.headers[PLUGIN_HEADER]).toMatch(/^medusa-plugin-payment-collections@/)
      expect(Object.keys(res.body)).toEqual(["payment_session"])
      expect(res.body.payment_session).toMatchObject({
        id: tp.id,
        provider_id: "test-pay",
        amount: 800,
        status: "authorized",
        data: expect.objectContaining({ id: tp.data.id, status: "authorized" }),
      })
      expect(Date.parse(res.body.payment_session.payment_authorized_at)).not.toBeNaN()
      expect(await collectionRow(collection.id)).toEqual({ status: "authorized", authorized_amount: 800 })
      const payments = await linkedPayments(collection.id)
      expect(payments).toEqual([expect.objectContaining({ amount: 800, provider_id: "test-pay", currency_code: "usd" })])
    })

    it("goes not_paid → awaiting (requires_more) → partially_authorized → authorized", async () => {
      const { collection, manual, tp } = await collectionWith(1000, [
        { provider_id: "manual", amount: 600 },
        { provider_id: "test-pay", amount: 400 },
      ])

      await psp.confirmSession(tp, "requires_more")
      const notYet = await authorizeOne(collection.id, tp.id)
      expect(notYet.status).toBe(422)
      expect(notYet.body.type).toBe("payment_authorization_error")
      expect(await collectionRow(collection.id)).toEqual({ status: "awaiting", authorized_amount: 0 })
      expect((await sessionRow(tp.id)).status).toBe("requires_more")
      expect(await linkedPayments(collection.id)).toEqual([])

      const manualOk = await authorizeOne(collection.id, manual.id)
      expect(manualOk.status).toBe(200)
      expect(manualOk.body.payment_session).toMatchObject({ id: manual.id, status: "authorized" })
      expect(await collectionRow(collection.id)).toEqual({ status: "partially_authorized", authorized_amount: 600 })

      // The shopper completes 3-D Secure.
      await psp.confirmSession(tp)
      const tpOk = await authorizeOne(collection.id, tp.id)
      expect(tpOk.status).toBe(200)
      expect(tpOk.body.payment_session).toMatchObject({ id: tp.id, status: "authorized" })
      expect(await collectionRow(collection.id)).toEqual({ status: "authorized", authorized_amount: 1000 })
      expect((await linkedPayments(collection.id)).map((p) => [p.provider_id, p.amount])).toEqual([
        ["test-pay", 400],
        ["manual", 600],
      ])
    })

    it("a session whose shopper has not confirmed the payment → 422 payment_authorization_error, its intent still pending", async () => {
      const { collection, tp } = await collectionWith(500, [{ provider_id: "test-pay", amount: 500 }])

      const res = await authorizeOne(collection.id, tp.id)

      expect(res.status).toBe(422)
      expect(res.body.type).toBe("payment_authorization_error")
      expect((await sessionRow(tp.id)).status).toBe("pending")
      expect(await linkedPayments(collection.id)).toEqual([])
      expect(await psp.intent(tp.data.id)).toMatchObject({ status: "pending" })
      expect((await psp.state()).calls.authorizePayment).toBe(1)
    })

    it("a provider that refuses → 422 payment_authorization_error; a retry then succeeds with one payment", async () => {
      const { collection, tp } = await collectionWith(500, [{ provider_id: "test-pay", amount: 500 }])
      await psp.confirmSession(tp)
      await psp.behaviour({ authorizePayment: { fail: "refuse", times: 1 } })

      const refused = await authorizeOne(collection.id, tp.id)

      expect(refused.status).toBe(422)
      expect(refused.body.type).toBe("payment_authorization_error")
      expect((await sessionRow(tp.id)).status).toBe("error")
      expect(await collectionRow(collection.id)).toEqual({ status: "awaiting", authorized_amount: 0 })
      expect(await linkedPayments(collection.id)).toEqual([])

      const retried = await authorizeOne(collection.id, tp.id)

      expect(retried.status).toBe(200)
      expect(retried.body.payment_session).toMatchObject({ id: tp.id, status: "authorized" })
      expect(await collectionRow(collection.id)).toEqual({ status: "authorized", authorized_amount: 500 })
      expect(await linkedPayments(collection.id)).toHaveLength(1)
    })

    it("an already authorized session → 200 without calling the provider again", async () => {
      const { collection, tp } = await collectionWith(500, [{ provider_id: "test-pay", amount: 500 }])
      await psp.confirmSession(tp)
      expect((await authorizeOne(collection.id, tp.id)).status).toBe(200)

      const again = await authorizeOne(collection.id, tp.id)

      expect(again.status).toBe(200)
      expect(again.body.payment_session).toMatchObject({ id: tp.id, status: "authorized" })
      expect((await psp.state()).calls.authorizePayment).toBe(1)
      expect(await linkedPayments(collection.id)).toHaveLength(1)
    })

    it("a session of another collection → 404 not_found, that session untouched", async () => {
      const mine = await collectionWith(300, [{ provider_id: "manual", amount: 300 }])
      const other = await collectionWith(300, [{ provider_id: "test-pay", amount: 300 }])

      const res = await authorizeOne(mine.collection.id, other.tp.id)

      expect(res.status).toBe(404)
      expect(res.body.type).toBe("not_found")
      expect((await psp.state()).calls.authorizePayment).toBe(0)
      expect((await sessionRow(other.tp.id)).status).toBe("pending")
      expect(await collectionRow(other.collection.id)).toEqual({ status: "not_paid", authorized_amount: null })
    })

    it("a canceled collection → 400 not_allowed", async () => {
      const { collection, tp } = await collectionWith(300, [{ provider_id: "test-pay", amount: 300 }])
      await db.query(`UPDATE payment_collection SET status = 'canceled' WHERE id = $1`, [collection.id])

      const res = await authorizeOne(collection.id, tp.id)

      expect(res.status).toBe(400)
      expect(res.body.type).toBe("not_allowed")
      expect((await psp.state()).calls.authorizePayment).toBe(0)
      expect(await linkedPayments(collection.id)).toEqual([])
    })
  })

  describe("the payment-collection.payment_authorized event", () => {
    it("is delivered to subscribers with { id } once the collection's authorization changed", async () => {
      const { collection, tp } = await collectionWith(500, [{ provider_id: "test-pay", amount: 500 }])
      await psp.confirmSession(tp)

      expect((await authorizeOne(collection.id, tp.id)).status).toBe(200)

      const events = await waitForEvents(PAYMENT_AUTHORIZED, (all) => all.some((e) => e.data?.id === collection.id))
      expect(events.filter((e) => e.data?.id === collection.id).map((e) => e.data)).toEqual([{ id: collection.id }])
    })

    it("is not emitted again when an authorized collection is authorized again", async () => {
      const { collection, tp } = await collectionWith(500, [{ provider_id: "test-pay", amount: 500 }])
      await psp.confirmSession(tp)
      expect((await authorizeOne(collection.id, tp.id)).status).toBe(200)
      await waitForEvents(PAYMENT_AUTHORIZED, (all) => all.some((e) => e.data?.id === collection.id))

      expect((await authorizeOne(collection.id, tp.id)).status).toBe(200)
      // A later authorization of another collection is staged after the no-op, so once its
      // event arrived, an event of the no-op would have arrived too.
      const marker = await collectionWith(100, [{ provider_id: "manual", amount: 100 }])
      expect((await authorizeOne(marker.collection.id, marker.manual.id)).status).toBe(200)
      const events = await waitForEvents(PAYMENT_AUTHORIZED, (all) =>
        all.some((e) => e.data?.id === marker.collection.id)
      )

      expect(events.some((e) => e.data?.id === marker.collection.id)).toBe(true)
      expect(events.filter((e) => e.data?.id === collection.id)).toHaveLength(1)
    })
  })
})
