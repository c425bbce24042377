import { adminApi, api } from "./helpers/http"
import { linkedSessions as sessionRows } from "./helpers/payments"
import { createPaymentCollection, createRegion, db } from "./helpers/factories"
import { waitForSettledJournal } from "./helpers/journal"
import { psp } from "./helpers/fake-psp"

const PLUGIN_HEADER = "x-payment-collections-plugin"

function createSession(collectionId: string, body: unknown) {
  return api.post(`/store/payment-collections/${collectionId}/sessions`, body)
}


describe("POST /store/payment-collections/:id/sessions (Create a Payment Session)", () => {
  let region: any

  beforeAll(async () => {
    region = await createRegion({ providers: ["manual", "test-pay"] })
  })

  beforeEach(() => psp.reset())

  afterAll(() => db.end())

  it("answers with the full contract of the reference page, from the plugin's route", async () => {
    const collection = await createPaymentCollection({
      regionId: region.id,
      amount: 4200,
      description: "Order edit",
    })

    const res = await createSession(collection.id, { provider_id: "manual" })

    expect(res.status).toBe(200)
    expect(res.headers[PLUGIN_HEADER]).toMatch(/^medusa-plugin-payment-collections@\d+\.\d+\.\d+/)
    const pc = res.body.payment_collection
    expect(pc).toEqual(
      expect.objectContaining({
        id: collection.id,
        description: "Order edit",
        amount: 4200,
        authorized_amount: null,
        region_id: region.id,
        created_by: "test",
        deleted_at: null,
        type: "order_edit",
        status: "not_paid",
        currency_code: "usd",
        metadata: null,
      })
    )
    expect(Date.parse(pc.created_at)).not.toBeNaN()
    expect(Date.parse(pc.updated_at)).not.toBeNaN()
    expect(pc.region).toEqual(
      expect.objectContaining({ id: region.id, currency_code: "usd", name: region.name })
    )
    expect(pc.region.payment_providers.map((p: any) => p.id).sort()).toEqual(["manual", "test-pay"])
    expect(pc.payment_sessions).toHaveLength(1)
    expect(pc.payment_sessions[0]).toEqual({
      id: expect.stringMatching(/^ps_/),
      created_at: expect.any(String),
      updated_at: expect.any(String),
      cart_id: null,
      provider_id: "manual",
      is_selected: null,
      is_initiated: true,
      status: "pending",
      data: expect.any(Object),
      idempotency_key: null,
      amount: 4200,
      payment_authorized_at: null,
    })
  })

  it("creates one session for the full amount, linked to the collection", async () => {
    const collection = await createPaymentCollection({ regionId: region.id, amount: 1500 })

    const res = await createSession(collection.id, { provider_id: "test-pay" })

    expect(res.status).toBe(200)
    const rows = await sessionRows(collection.id)
    expect(rows).toHaveLength(1)
    expect(rows[0]).toMatchObject({ provider_id: "test-pay", amount: 1500, status: "pending", cart_id: null })
    expect(res.body.payment_collection.payment_sessions[0].id).toBe(rows[0].id)
    const state = await psp.state()
    expect(state.calls.initiatePayment).toBe(1)
    expect(state.intents).toEqual([
      expect.objectContaining({ id: rows[0].data.id, resource_id: collection.id, amount: 1500, status: "pending" }),
    ])
  })

  it("keeps the same session (same id) when the same provider is chosen again", async () => {
    const collection = await createPaymentCollection({ regionId: region.id, amount: 1500 })

    const first = await createSession(collection.id, { provider_id: "test-pay" })
    const second = await createSession(collection.id, { provider_id: "test-pay" })

    expect(second.status).toBe(200)
    const firstId = first.body.payment_collection.payment_sessions[0].id
    expect(second.body.payment_collection.payment_sessions.map((s: any) => s.id)).toEqual([firstId])
    expect(await sessionRows(collection.id)).toHaveLength(1)
    expect((await psp.state()).calls.initiatePayment).toBe(1)
  })

  it("answers the same fields in the same order whichever path answers (the locked update, or the lock-free re-post)", async () => {
    const collection = await createPaymentCollection({ regionId: region.id, amount: 1400 })
    expect((await createSession(collection.id, { provider_id: "test-pay" })).status).toBe(200)
    // A new amount: the next re-post updates the session under the lock; the one after changes nothing.
    await db.query(`UPDATE payment_collection SET amount = 1450 WHERE id = $1`, [collection.id])
    const locked = await createSession(collection.id, { provider_id: "test-pay" })
    const lockFree = await createSession(collection.id, { provider_id: "test-pay" })
    const keysOf = (body: any) => ({
      collection: Object.keys(body.payment_collection),
      region: Object.keys(body.payment_collection.region),
      sessions: body.payment_collection.payment_sessions.map((session: any) => Object.keys(session)),
    })

    expect(locked.status).toBe(200)
    expect(lockFree.status).toBe(200)
    expect((await psp.state()).calls.updatePayment).toBe(1)
    expect(keysOf(lockFree.body)).toEqual(keysOf(locked.body))
    expect(lockFree.body).toEqual(locked.body)
  })

  it("replaces the session when another provider is chosen, deleting the old one at its provider and in the database", async () => {
    const collection = await createPaymentCollection({ regionId: region.id, amount: 1500 })
    const first = await createSession(collection.id, { provider_id: "test-pay" })
    const old = first.body.payment_collection.payment_sessions[0]

    const res = await createSession(collection.id, { provider_id: "manual" })

    expect(res.status).toBe(200)
    const sessions = res.body.payment_collection.payment_sessions
    expect(sessions).toHaveLength(1)
    expect(sessions[0]).toMatchObject({ provider_id: "manual", amount: 1500 })
    expect(sessions[0].id).not.toBe(old.id)
    const state = await psp.state()
    expect(state.calls.deletePayment).toBe(1)
    expect(state.intents).toEqual([expect.objectContaining({ id: old.data.id, status: "canceled" })])
    expect(state.live).toEqual([])
    const { rows } = await db.query(`SELECT id FROM payment_session WHERE id = $1`, [old.id])
    expect(rows).toEqual([])
    expect((await sessionRows(collection.id)).map((r) => r.id)).toEqual([sessions[0].id])
  })

  it("accepts an awaiting collection", async () => {
    const collection = await createPaymentCollection({ regionId: region.id, amount: 800, status: "awaiting" })
    const res = await createSession(collection.id, { provider_id: "manual" })
    expect(res.status).toBe(200)
    expect(res.body.payment_collection.payment_sessions).toHaveLength(1)
  })

  describe("refuses bad requests with Medusa's error body, writing nothing", () => {
    let collection: any

    beforeEach(async () => {
      collection = await createPaymentCollection({ regionId: region.id, amount: 1000 })
    })

    afterEach(async () => {
      expect(await sessionRows(collection.id)).toEqual([])
      expect((await psp.state()).intents).toEqual([])
    })

    it("malformed JSON → 400 invalid_data (core answers an HTML error page)", async () => {
      const res = await api.raw("POST", `/store/payment-collections/${collection.id}/sessions`, '{"provider_id":')
      expect(res.status).toBe(400)
      expect(res.body.type).toBe("invalid_data")
      expect(typeof res.body.message).toBe("string")
    })

    it.each([
      ["a missing provider_id", {}],
      ["a numeric provider_id", { provider_id: 42 }],
      ["a null provider_id", { provider_id: null }],
      ["an object provider_id", { provider_id: { id: "manual" } }],
      ["an unknown property", { provider_id: "manual", amount: 5 }],
    ])("%s → 400 invalid_data", async (_name, body) => {
      const res = await createSession(collection.id, body)
      expect(res.status).toBe(400)
      expect(res.body.type).toBe("invalid_data")
    })

    it("a JSON array body → 400 invalid_data", async () => {
      const res = await createSession(collection.id, [{ provider_id: "manual" }])
      expect(res.status).toBe(400)
      expect(res.body.type).toBe("invalid_data")
    })

    it("an unknown provider → 400 invalid_data", async () => {
      const res = await createSession(collection.id, { provider_id: "no-such-provider" })
      expect(res.status).toBe(400)
      expect(res.body.type).toBe("invalid_data")
    })

    it("a provider installed but not enabled on the region → 400 invalid_data", async () => {
      const manualOnly = await createRegion({ providers: ["manual"] })
      const other = await createPaymentCollection({ regionId: manualOnly.id, amount: 1000 })
      const res = await createSession(other.id, { provider_id: "test-pay" })
      expect(res.status).toBe(400)
      expect(res.body.type).toBe("invalid_data")
      expect(await sessionRows(other.id)).toEqual([])
    })

    it("a provider that refuses → 400 invalid_data, no session left", async () => {
      await psp.behaviour({ initiatePayment: { fail: "refuse" } })
      const res = await createSession(collection.id, { provider_id: "test-pay" })
      expect(res.status).toBe(400)
      expect(res.body.type).toBe("invalid_data")
      expect(res.body.message).toContain("test-pay refused initiatePayment")
    })

    it.each(["authorized", "partially_authorized", "canceled"])(
      "a collection whose status is %s → 400 not_allowed",
      async (status) => {
        await db.query(`UPDATE payment_collection SET status = $2 WHERE id = $1`, [collection.id, status])
        const res = await createSession(collection.id, { provider_id: "manual" })
        expect(res.status).toBe(400)
        expect(res.body.type).toBe("not_allowed")
      }
    )
  })

  it("an unknown collection → 404 not_found", async () => {
    const res = await createSession("paycol_does_not_exist", { provider_id: "manual" })
    expect(res.status).toBe(404)
    expect(res.body.type).toBe("not_found")
  })

  it("a provider switch whose old provider refuses the delete: the switch is made, and the old provider session is deleted once the provider takes it", async () => {
    const collection = await createPaymentCollection({ regionId: region.id, amount: 1000 })
    const first = await createSession(collection.id, { provider_id: "test-pay" })
    const old = first.body.payment_collection.payment_sessions[0]
    await psp.behaviour({ deletePayment: { fail: "refuse", times: 1 } })

    const res = await createSession(collection.id, { provider_id: "manual" })

    // The removal is committed with the switch; its delete at the provider is retried until it is done.
    expect(res.status).toBe(200)
    expect(res.body.payment_collection.payment_sessions.map((s: any) => s.provider_id)).toEqual(["manual"])
    expect((await sessionRows(collection.id)).map((r) => r.provider_id)).toEqual(["manual"])
    const rows = await waitForSettledJournal(collection.id)
    const deletes = rows.filter((r) => r.operation === "delete")
    expect(deletes).toEqual([expect.objectContaining({ payment_session_id: old.id, state: "committed", outcome: "ok" })])
    expect(await psp.intent(old.data.id)).toMatchObject({ status: "canceled" })
    expect((await psp.history({ intentId: old.data.id, method: "deletePayment" })).map((c) => c.outcome)).toEqual(["refused", "ok"])
  })

  it("refuses a provider the admin disabled on the region at once, and accepts it once re-enabled", async () => {
    const own = await createRegion({ providers: ["manual", "test-pay"] })
    const collection = await createPaymentCollection({ regionId: own.id, amount: 1000 })

    const disabled = await adminApi.delete(`/admin/regions/${own.id}/payment-providers/test-pay`)
    expect(disabled.status).toBe(200)
    const refused = await createSession(collection.id, { provider_id: "test-pay" })
    expect(refused.status).toBe(400)
    expect(refused.body.type).toBe("invalid_data")

    const enabled = await adminApi.post(`/admin/regions/${own.id}/payment-providers`, { provider_id: "test-pay" })
    expect(enabled.status).toBe(200)
    const accepted = await createSession(collection.id, { provider_id: "test-pay" })
    expect(accepted.status).toBe(200)
    expect(accepted.body.payment_collection.payment_sessions[0].provider_id).toBe("test-pay")
  })
})
