import { adminApi, api } from "./helpers/http"
import { linkedSessions as sessionRows, sessionExists } from "./helpers/payments"
import { createPaymentCollection, createRegion, db } from "./helpers/factories"
import { psp } from "./helpers/fake-psp"
import { waitForSettledJournal } from "./helpers/journal"

const PLUGIN_HEADER = "x-payment-collections-plugin"

function refresh(collectionId: string, sessionId: string) {
  return api.post(`/store/payment-collections/${collectionId}/sessions/${sessionId}`)
}



describe("POST /store/payment-collections/:id/sessions/:session_id (Refresh a Payment Session)", () => {
  let region: any

  beforeAll(async () => {
    region = await createRegion({ providers: ["manual", "test-pay"] })
  })

  beforeEach(() => psp.reset())

  afterAll(() => db.end())

  async function collectionWith(amount: number, sessions: { provider_id: string; amount: number }[], regionId = region.id) {
    const collection = await createPaymentCollection({ regionId, amount })
    const res = await api.post(`/store/payment-collections/${collection.id}/sessions/batch`, { sessions })
    expect(res.status).toBe(200)
    const list: any[] = res.body.payment_collection.payment_sessions
    return {
      collection,
      manual: list.find((s) => s.provider_id === "manual"),
      tp: list.find((s) => s.provider_id === "test-pay"),
    }
  }

  it("answers { payment_session } with a NEW session; the old one is deleted at the provider and in the database", async () => {
    const { collection, tp: old } = await collectionWith(900, [{ provider_id: "test-pay", amount: 900 }])

    const res = await refresh(collection.id, old.id)

    expect(res.status).toBe(200)
    expect(res.headers[PLUGIN_HEADER]).toMatch(/^medusa-plugin-payment-collections@/)
    expect(Object.keys(res.body)).toEqual(["payment_session"])
    const fresh = res.body.payment_session
    expect(fresh).toMatchObject({
      id: expect.stringMatching(/^ps_/),
      provider_id: "test-pay",
      amount: 900,
      status: "pending",
      cart_id: null,
      payment_authorized_at: null,
      data: expect.objectContaining({ id: expect.stringMatching(/^pi_/) }),
    })
    expect(fresh.id).not.toBe(old.id)
    expect(fresh.data.id).not.toBe(old.data.id)

    const state = await psp.state()
    expect(state.calls.initiatePayment).toBe(2) // the first session, then the refresh
    expect(state.calls.deletePayment).toBe(1)
    expect((await psp.history({ method: "deletePayment" })).map((h) => h.intentId)).toEqual([old.data.id])
    expect(state.intents).toEqual([
      expect.objectContaining({ id: old.data.id, status: "canceled" }),
      expect.objectContaining({ id: fresh.data.id, amount: 900, status: "pending" }),
    ])

    expect(await sessionExists(old.id)).toEqual({ row: false, link: false })
    const rows = await sessionRows(collection.id)
    expect(rows.map((r) => ({ id: r.id, provider_id: r.provider_id, amount: r.amount }))).toEqual([
      { id: fresh.id, provider_id: "test-pay", amount: 900 },
    ])
    expect(rows[0].data).toEqual(fresh.data)
  })

  it("refreshes one session of a split payment, keeping its amount and leaving the other session alone", async () => {
    const { collection, manual, tp } = await collectionWith(1000, [
      { provider_id: "manual", amount: 650 },
      { provider_id: "test-pay", amount: 350 },
    ])

    const res = await refresh(collection.id, tp.id)

    expect(res.status).toBe(200)
    expect(res.body.payment_session).toMatchObject({ provider_id: "test-pay", amount: 350 })
    const rows = await sessionRows(collection.id)
    expect(rows.map((r) => r.id).sort()).toEqual([manual.id, res.body.payment_session.id].sort())
    expect(rows.find((r) => r.id === manual.id)).toMatchObject({ amount: 650, status: "pending" })

    const got = await api.get(`/store/payment-collections/${collection.id}`)
    expect(got.body.payment_collection.payment_sessions.map((s: any) => s.id).sort()).toEqual(
      [manual.id, res.body.payment_session.id].sort()
    )
  })

  it("refreshes a manual session", async () => {
    const { collection, manual } = await collectionWith(300, [{ provider_id: "manual", amount: 300 }])

    const res = await refresh(collection.id, manual.id)

    expect(res.status).toBe(200)
    expect(res.body.payment_session).toMatchObject({ provider_id: "manual", amount: 300, status: "pending" })
    expect(res.body.payment_session.id).not.toBe(manual.id)
    expect(await sessionExists(manual.id)).toEqual({ row: false, link: false })
    expect((await sessionRows(collection.id)).map((r) => r.id)).toEqual([res.body.payment_session.id])
  })

  it("a session of another collection → 404 not_found, and that session is untouched", async () => {
    const mine = await collectionWith(300, [{ provider_id: "manual", amount: 300 }])
    const other = await collectionWith(300, [{ provider_id: "test-pay", amount: 300 }])
    const before = await psp.state()

    const res = await refresh(mine.collection.id, other.tp.id)

    expect(res.status).toBe(404)
    expect(res.body.type).toBe("not_found")
    const after = await psp.state()
    expect(after.calls).toEqual(before.calls)
    expect(after.intents.map((i) => i.id)).toEqual([other.tp.data.id])
    expect((await sessionRows(other.collection.id)).map((r) => [r.id, r.amount, r.status])).toEqual([
      [other.tp.id, 300, "pending"],
    ])
    expect((await sessionRows(mine.collection.id)).map((r) => r.id)).toEqual([mine.manual.id])
  })

  it("a session id that does not exist → 404 not_found", async () => {
    const { collection } = await collectionWith(300, [{ provider_id: "manual", amount: 300 }])
    const res = await refresh(collection.id, "ps_does_not_exist")
    expect(res.status).toBe(404)
    expect(res.body.type).toBe("not_found")
  })

  it("an unknown collection → 404 not_found", async () => {
    const res = await refresh("paycol_does_not_exist", "ps_does_not_exist")
    expect(res.status).toBe(404)
    expect(res.body.type).toBe("not_found")
  })

  describe("authorized sessions", () => {
    /** manual 600 authorized; test-pay 400 refused (status error): partially_authorized. */
    async function partiallyAuthorized() {
      const setup = await collectionWith(1000, [
        { provider_id: "manual", amount: 600 },
        { provider_id: "test-pay", amount: 400 },
      ])
      await psp.behaviour({ authorizePayment: { fail: "refuse", times: 1 } })
      const res = await api.post(`/store/payment-collections/${setup.collection.id}/sessions/batch/authorize`, {
        session_ids: [setup.manual.id, setup.tp.id],
      })
      expect(res.status).toBe(422)
      return setup
    }

    it("an authorized session → 400 not_allowed; the session, its payment and the collection are unchanged", async () => {
      const { collection, manual } = await partiallyAuthorized()
      const before = await psp.history({ resourceId: collection.id })

      const res = await refresh(collection.id, manual.id)

      expect(res.status).toBe(400)
      expect(res.body.type).toBe("not_allowed")
      expect(await psp.history({ resourceId: collection.id })).toEqual(before)
      const row = (await sessionRows(collection.id)).find((r) => r.id === manual.id)
      expect(row).toMatchObject({ status: "authorized", amount: 600 })
      const { rows } = await db.query(
        `SELECT status, authorized_amount FROM payment_collection WHERE id = $1`,
        [collection.id]
      )
      expect(rows[0]).toEqual({ status: "partially_authorized", authorized_amount: 600 })
      const payments = await db.query(
        `SELECT p.amount FROM payment p JOIN payment_collection_payments pcp ON pcp.payment_id = p.id
          WHERE pcp.payment_collection_id = $1`,
        [collection.id]
      )
      expect(payments.rows).toEqual([{ amount: 600 }])
    })

    it("the refused session of a partially authorized collection can be refreshed and then authorized", async () => {
      const { collection, tp } = await partiallyAuthorized()

      const res = await refresh(collection.id, tp.id)

      expect(res.status).toBe(200)
      const fresh = res.body.payment_session
      expect(fresh).toMatchObject({ provider_id: "test-pay", amount: 400, status: "pending" })
      expect(await sessionExists(tp.id)).toEqual({ row: false, link: false })

      await psp.confirmSession(fresh)
      const authorized = await api.post(`/store/payment-collections/${collection.id}/sessions/${fresh.id}/authorize`)
      expect(authorized.status).toBe(200)
      const { rows } = await db.query(
        `SELECT status, authorized_amount FROM payment_collection WHERE id = $1`,
        [collection.id]
      )
      expect(rows[0]).toEqual({ status: "authorized", authorized_amount: 1000 })
    })
  })

  it.each(["canceled", "authorized"])("a %s collection → 400 not_allowed, the session kept", async (status) => {
    const { collection, tp } = await collectionWith(300, [{ provider_id: "test-pay", amount: 300 }])
    await db.query(`UPDATE payment_collection SET status = $2 WHERE id = $1`, [collection.id, status])

    const res = await refresh(collection.id, tp.id)

    expect(res.status).toBe(400)
    expect(res.body.type).toBe("not_allowed")
    expect((await sessionRows(collection.id)).map((r) => r.id)).toEqual([tp.id])
    expect((await psp.state()).calls.deletePayment).toBe(0)
  })

  it("a provider that refuses to initiate → 400 invalid_data, the old session intact", async () => {
    const { collection, tp } = await collectionWith(300, [{ provider_id: "test-pay", amount: 300 }])
    await psp.behaviour({ initiatePayment: { fail: "refuse" } })

    const res = await refresh(collection.id, tp.id)

    expect(res.status).toBe(400)
    expect(res.body.type).toBe("invalid_data")
    expect((await sessionRows(collection.id)).map((r) => r.id)).toEqual([tp.id])
    const state = await psp.state()
    expect(state.calls.deletePayment).toBe(0)
    expect(state.intents.map((i) => i.id)).toEqual([tp.data.id])
  })

  it("a provider that refuses to delete the old one: the refresh is made, and the old provider session is deleted once the provider takes it", async () => {
    const { collection, tp } = await collectionWith(300, [{ provider_id: "test-pay", amount: 300 }])
    await psp.behaviour({ deletePayment: { fail: "refuse", times: 1 } })

    const res = await refresh(collection.id, tp.id)

    expect(res.status).toBe(200)
    const rows = await sessionRows(collection.id)
    expect(rows.map((r) => r.id)).toEqual([res.body.payment_session.id])
    await waitForSettledJournal(collection.id)
    expect(await psp.intent(tp.data.id)).toMatchObject({ status: "canceled" })
    expect((await psp.state()).live.map((i) => i.id)).toEqual([rows[0].data.id])
    expect((await psp.history({ intentId: tp.data.id, method: "deletePayment" })).map((c) => c.outcome)).toEqual(["refused", "ok"])
  })

  it("a provider since disabled on the region → 400 invalid_data, the session kept", async () => {
    const own = await createRegion({ providers: ["manual", "test-pay"] })
    const { collection, tp } = await collectionWith(300, [{ provider_id: "test-pay", amount: 300 }], own.id)
    expect((await adminApi.delete(`/admin/regions/${own.id}/payment-providers/test-pay`)).status).toBe(200)

    const res = await refresh(collection.id, tp.id)

    expect(res.status).toBe(400)
    expect(res.body.type).toBe("invalid_data")
    expect((await sessionRows(collection.id)).map((r) => r.id)).toEqual([tp.id])
    expect((await psp.state()).calls.initiatePayment).toBe(1)
  })
})
