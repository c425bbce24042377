import { api } from "./helpers/http"
import { linkedSessions as sessionRows, sessionExists, waitFor } from "./helpers/payments"
import { createPaymentCollection, createRegion, db } from "./helpers/factories"
import { psp } from "./helpers/fake-psp"
import { attemptRows, waitForSettledJournal } from "./helpers/journal"

const PLUGIN_HEADER = "x-payment-collections-plugin"

type WantedSession = { provider_id: string; amount: number; session_id?: string }

function batch(collectionId: string, sessions: unknown) {
  return api.post(`/store/payment-collections/${collectionId}/sessions/batch`, { sessions })
}

function authorizeBatch(collectionId: string, sessionIds: string[]) {
  return api.post(`/store/payment-collections/${collectionId}/sessions/batch/authorize`, { session_ids: sessionIds })
}


/** Compares sets of sessions regardless of order. */
function summary(sessions: { provider_id: string; amount: number }[]) {
  return sessions.map((s) => `${s.provider_id}:${s.amount}`).sort()
}


async function collectionRow(collectionId: string) {
  const { rows } = await db.query(`SELECT status, authorized_amount FROM payment_collection WHERE id = $1`, [collectionId])
  return rows[0]
}

describe("POST /store/payment-collections/:id/sessions/batch (Manage Payment Sessions)", () => {
  let region: any

  beforeAll(async () => {
    region = await createRegion({ providers: ["manual", "test-pay"] })
  })

  beforeEach(() => psp.reset())

  afterAll(() => db.end())

  /** A collection whose sessions were set by a first batch. */
  async function collectionWith(amount: number, sessions: WantedSession[]) {
    const collection = await createPaymentCollection({ regionId: region.id, amount })
    const res = await batch(collection.id, sessions)
    expect(res.status).toBe(200)
    return { collection, sessions: res.body.payment_collection.payment_sessions as any[] }
  }

  describe("sets the collection's sessions to exactly the listed ones", () => {
    it("splits a payment over two providers (manual + test-pay), from the plugin's route", async () => {
      const collection = await createPaymentCollection({ regionId: region.id, amount: 1000 })

      const res = await batch(collection.id, [
        { provider_id: "manual", amount: 600 },
        { provider_id: "test-pay", amount: 400 },
      ])

      expect(res.status).toBe(200)
      expect(res.headers[PLUGIN_HEADER]).toMatch(/^medusa-plugin-payment-collections@/)
      const pc = res.body.payment_collection
      expect(pc).toMatchObject({ id: collection.id, amount: 1000, status: "not_paid" })
      expect(pc.region.id).toBe(region.id)
      expect(summary(pc.payment_sessions)).toEqual(["manual:600", "test-pay:400"])
      for (const s of pc.payment_sessions) {
        expect(s).toMatchObject({ id: expect.stringMatching(/^ps_/), status: "pending", cart_id: null })
      }

      const rows = await sessionRows(collection.id)
      expect(summary(rows)).toEqual(["manual:600", "test-pay:400"])
      expect(rows.map((r) => r.id).sort()).toEqual(pc.payment_sessions.map((s: any) => s.id).sort())
      const state = await psp.state()
      expect(state.calls.initiatePayment).toBe(1)
      const testPayRow = rows.find((r) => r.provider_id === "test-pay")
      expect(state.intents).toEqual([
        expect.objectContaining({ id: testPayRow.data.id, amount: 400, currency_code: "usd", status: "pending" }),
      ])
    })

    it("an amount change calls the provider's update, keeps the session ids, and stores the new amounts", async () => {
      const { collection, sessions } = await collectionWith(1000, [
        { provider_id: "manual", amount: 600 },
        { provider_id: "test-pay", amount: 400 },
      ])
      const manual = sessions.find((s) => s.provider_id === "manual")
      const tp = sessions.find((s) => s.provider_id === "test-pay")
      const before = await psp.state()

      const res = await batch(collection.id, [
        { provider_id: "manual", amount: 300, session_id: manual.id },
        { provider_id: "test-pay", amount: 700, session_id: tp.id },
      ])

      expect(res.status).toBe(200)
      const byId = Object.fromEntries(res.body.payment_collection.payment_sessions.map((s: any) => [s.id, s]))
      expect(Object.keys(byId).sort()).toEqual([manual.id, tp.id].sort())
      expect(byId[manual.id].amount).toBe(300)
      expect(byId[tp.id].amount).toBe(700)
      const rows = await sessionRows(collection.id)
      expect(Object.fromEntries(rows.map((r) => [r.id, r.amount]))).toEqual({ [manual.id]: 300, [tp.id]: 700 })
      const after = await psp.state()
      expect(after.calls.updatePayment - before.calls.updatePayment).toBe(1)
      expect(after.calls.initiatePayment - before.calls.initiatePayment).toBe(0)
      expect(after.intents).toEqual([expect.objectContaining({ id: tp.data.id, amount: 700 })])
    })

    it("a session listed again unchanged is kept without calling its provider", async () => {
      const { collection, sessions } = await collectionWith(500, [{ provider_id: "test-pay", amount: 500 }])
      const before = await psp.state()

      const res = await batch(collection.id, [{ provider_id: "test-pay", amount: 500, session_id: sessions[0].id }])

      expect(res.status).toBe(200)
      expect(res.body.payment_collection.payment_sessions.map((s: any) => s.id)).toEqual([sessions[0].id])
      const after = await psp.state()
      expect(after.calls).toEqual(before.calls)
    })

    it("sessions left out are deleted at their provider and in the database", async () => {
      const { collection, sessions } = await collectionWith(1000, [
        { provider_id: "manual", amount: 600 },
        { provider_id: "test-pay", amount: 400 },
      ])
      const manual = sessions.find((s) => s.provider_id === "manual")
      const tp = sessions.find((s) => s.provider_id === "test-pay")
      expect((await psp.state()).intents.map((i) => i.id)).toEqual([tp.data.id])

      const res = await batch(collection.id, [{ provider_id: "manual", amount: 1000, session_id: manual.id }])

      expect(res.status).toBe(200)
      expect(res.body.payment_collection.payment_sessions).toEqual([
        expect.objectContaining({ id: manual.id, provider_id: "manual", amount: 1000 }),
      ])
      const state = await psp.state()
      expect(state.calls.deletePayment).toBe(1)
      expect((await psp.history({ method: "deletePayment" })).map((h) => h.intentId)).toEqual([tp.data.id])
      expect(state.intents).toEqual([expect.objectContaining({ id: tp.data.id, status: "canceled" })])
      expect(state.live).toEqual([])
      expect(await sessionExists(tp.id)).toEqual({ row: false, link: false })
      expect((await sessionRows(collection.id)).map((r) => r.id)).toEqual([manual.id])
    })

    it("replaces every session when none is listed by id", async () => {
      const { collection, sessions } = await collectionWith(800, [{ provider_id: "test-pay", amount: 800 }])

      const res = await batch(collection.id, [
        { provider_id: "manual", amount: 200 },
        { provider_id: "test-pay", amount: 600 },
      ])

      expect(res.status).toBe(200)
      const now = res.body.payment_collection.payment_sessions
      expect(summary(now)).toEqual(["manual:200", "test-pay:600"])
      expect(now.map((s: any) => s.id)).not.toContain(sessions[0].id)
      expect(await sessionExists(sessions[0].id)).toEqual({ row: false, link: false })
      const state = await psp.state()
      expect(state.live).toEqual([expect.objectContaining({ amount: 600 })])
      expect(await psp.intent(sessions[0].data.id)).toMatchObject({ status: "canceled" })
      expect(summary(await sessionRows(collection.id))).toEqual(["manual:200", "test-pay:600"])
    })

    it("a session_id of another collection starts a new session and leaves the other collection alone", async () => {
      const other = await collectionWith(300, [{ provider_id: "test-pay", amount: 300 }])
      const foreign = other.sessions[0]
      const collection = await createPaymentCollection({ regionId: region.id, amount: 300 })

      const res = await batch(collection.id, [{ provider_id: "test-pay", amount: 300, session_id: foreign.id }])

      expect(res.status).toBe(200)
      const [created] = res.body.payment_collection.payment_sessions
      expect(created.id).not.toBe(foreign.id)
      expect((await sessionRows(other.collection.id)).map((r) => ({ id: r.id, amount: r.amount }))).toEqual([
        { id: foreign.id, amount: 300 },
      ])
      expect((await psp.state()).intents.map((i) => i.id)).toContain(foreign.data.id)
    })

    it("accepts an awaiting collection", async () => {
      const collection = await createPaymentCollection({ regionId: region.id, amount: 100, status: "awaiting" })
      const res = await batch(collection.id, [{ provider_id: "manual", amount: 100 }])
      expect(res.status).toBe(200)
      expect(summary(await sessionRows(collection.id))).toEqual(["manual:100"])
    })
  })

  describe("refuses a bad batch with 400 invalid_data, leaving sessions and provider as they were", () => {
    let collection: any
    let existing: any[]

    beforeEach(async () => {
      ;({ collection, sessions: existing } = await collectionWith(1000, [{ provider_id: "test-pay", amount: 1000 }]))
    })

    afterEach(async () => {
      const rows = await sessionRows(collection.id)
      expect(rows.map((r) => ({ id: r.id, provider_id: r.provider_id, amount: r.amount }))).toEqual([
        { id: existing[0].id, provider_id: "test-pay", amount: 1000 },
      ])
      const state = await psp.state()
      expect(state.live).toEqual([expect.objectContaining({ id: existing[0].data.id, amount: 1000 })])
      expect(await collectionRow(collection.id)).toEqual({ status: "not_paid", authorized_amount: null })
    })

    it.each<[string, unknown]>([
      ["amounts adding up to less", [{ provider_id: "manual", amount: 600 }, { provider_id: "test-pay", amount: 300 }]],
      ["amounts adding up to more", [{ provider_id: "manual", amount: 600 }, { provider_id: "test-pay", amount: 500 }]],
      ["a negative amount", [{ provider_id: "manual", amount: -100 }, { provider_id: "test-pay", amount: 1100 }]],
      ["a zero amount", [{ provider_id: "manual", amount: 0 }, { provider_id: "test-pay", amount: 1000 }]],
      ["fractional amounts", [{ provider_id: "manual", amount: 500.5 }, { provider_id: "test-pay", amount: 499.5 }]],
      ["an amount as a string", [{ provider_id: "manual", amount: "1000" }]],
      ["a missing amount", [{ provider_id: "manual" }]],
      ["an amount beyond the integer column", [{ provider_id: "manual", amount: 2 ** 31 }]],
      ["a missing provider_id", [{ amount: 1000 }]],
      ["an unknown property", [{ provider_id: "manual", amount: 1000, data: {} }]],
      ["no sessions", []],
      ["sessions not an array", { provider_id: "manual", amount: 1000 }],
    ])("%s", async (_name, sessions) => {
      const res = await batch(collection.id, sessions)
      expect(res.status).toBe(400)
      expect(res.body.type).toBe("invalid_data")
    })

    it("a provider installed but not enabled on the region (not silently dropped)", async () => {
      const manualOnly = await createRegion({ providers: ["manual"] })
      const other = await createPaymentCollection({ regionId: manualOnly.id, amount: 1000 })

      const res = await batch(other.id, [
        { provider_id: "manual", amount: 500 },
        { provider_id: "test-pay", amount: 500 },
      ])

      expect(res.status).toBe(400)
      expect(res.body.type).toBe("invalid_data")
      expect(res.body.message).toContain("test-pay")
      expect(await sessionRows(other.id)).toEqual([])
    })

    it("an unknown provider", async () => {
      const res = await batch(collection.id, [{ provider_id: "no-such-provider", amount: 1000 }])
      expect(res.status).toBe(400)
      expect(res.body.type).toBe("invalid_data")
      expect(res.body.message).toContain("no-such-provider")
    })

    it("a session_id listed with another provider", async () => {
      const res = await batch(collection.id, [{ provider_id: "manual", amount: 1000, session_id: existing[0].id }])
      expect(res.status).toBe(400)
      expect(res.body.type).toBe("invalid_data")
    })

    it("the same session_id listed twice", async () => {
      const res = await batch(collection.id, [
        { provider_id: "test-pay", amount: 500, session_id: existing[0].id },
        { provider_id: "test-pay", amount: 500, session_id: existing[0].id },
      ])
      expect(res.status).toBe(400)
      expect(res.body.type).toBe("invalid_data")
    })

    it("a provider that refuses to initiate → 400 invalid_data, the old session kept", async () => {
      await psp.behaviour({ initiatePayment: { fail: "refuse" } })
      const res = await batch(collection.id, [
        { provider_id: "manual", amount: 500 },
        { provider_id: "test-pay", amount: 500 },
      ])
      expect(res.status).toBe(400)
      expect(res.body.type).toBe("invalid_data")
    })

    it("a provider that refuses to update → 400 invalid_data, amount unchanged", async () => {
      await psp.behaviour({ updatePayment: { fail: "refuse" } })
      const res = await batch(collection.id, [
        { provider_id: "manual", amount: 500 },
        { provider_id: "test-pay", amount: 500, session_id: existing[0].id },
      ])
      expect(res.status).toBe(400)
      expect(res.body.type).toBe("invalid_data")
    })

  })

  it("the same batch sent again changes nothing: same sessions, no provider call", async () => {
    const { collection, sessions } = await collectionWith(1000, [
      { provider_id: "test-pay", amount: 700 },
      { provider_id: "manual", amount: 300 },
    ])
    const before = (await psp.state()).calls

    const res = await batch(collection.id, [
      { provider_id: "manual", amount: 300 },
      { provider_id: "test-pay", amount: 700 },
    ])

    expect(res.status).toBe(200)
    const byProvider = Object.fromEntries(sessions.map((s: any) => [s.provider_id, s.id]))
    expect(res.body.payment_collection.payment_sessions.map((s: any) => s.id)).toEqual([
      byProvider["manual"],
      byProvider["test-pay"],
    ])
    expect((await psp.state()).calls).toEqual(before)
  })

  describe("a removed session whose provider refuses the delete", () => {
    it("the batch is made, and the removed provider session is deleted once the provider takes it", async () => {
      const { collection, sessions } = await collectionWith(1000, [{ provider_id: "test-pay", amount: 1000 }])
      await psp.behaviour({ deletePayment: { fail: "refuse", times: 1 } })

      const res = await batch(collection.id, [{ provider_id: "manual", amount: 1000 }])

      expect(res.status).toBe(200)
      expect(summary(await sessionRows(collection.id))).toEqual(["manual:1000"])
      const rows = await waitForSettledJournal(collection.id)
      expect(rows.filter((r) => r.operation === "delete")).toEqual([
        expect.objectContaining({ payment_session_id: sessions[0].id, state: "committed", outcome: "ok" }),
      ])
      expect(await psp.intent(sessions[0].data.id)).toMatchObject({ status: "canceled" })
      expect((await psp.history({ intentId: sessions[0].data.id, method: "deletePayment" })).map((c) => c.outcome)).toEqual([
        "refused",
        "ok",
      ])
    })

    it("with new sessions initiated in the same batch: they are kept, and only the removed one is deleted", async () => {
      const { collection, sessions } = await collectionWith(1000, [{ provider_id: "test-pay", amount: 1000 }])
      await psp.behaviour({ deletePayment: { fail: "refuse", times: 1 } })

      const res = await batch(collection.id, [
        { provider_id: "test-pay", amount: 600 },
        { provider_id: "test-pay", amount: 400 },
      ])

      expect(res.status).toBe(200)
      const rows = await sessionRows(collection.id)
      expect(summary(rows)).toEqual(["test-pay:400", "test-pay:600"])
      await waitForSettledJournal(collection.id)
      expect(await psp.intent(sessions[0].data.id)).toMatchObject({ status: "canceled" })
      expect((await psp.state()).live.map((i) => i.id).sort()).toEqual(rows.map((r) => r.data.id).sort())
    })

    it("after an amount update: the database's amount is the provider's, and the refused delete is retried until it is done", async () => {
      const { collection, sessions } = await collectionWith(1000, [
        { provider_id: "test-pay", amount: 400 },
        { provider_id: "test-pay", amount: 600 },
      ])
      const kept = sessions.find((s) => s.amount === 400)
      const dropped = sessions.find((s) => s.amount === 600)
      await psp.behaviour({ deletePayment: { fail: "refuse", intentId: dropped.data.id } })

      const res = await batch(collection.id, [{ provider_id: "test-pay", amount: 1000, session_id: kept.id }])

      expect(res.status).toBe(200)
      const rows = await sessionRows(collection.id)
      expect(Object.fromEntries(rows.map((r) => [r.id, r.amount]))).toEqual({ [kept.id]: 1000 })
      expect(await psp.intent(kept.data.id)).toMatchObject({ amount: 1000 })
      // While the provider refuses, the journal names the session to delete, with why it is not done.
      const pending = await waitFor("the refusal to be journaled", async () =>
        (await attemptRows(collection.id)).find((r) => r.operation === "delete" && r.outcome === "refused")
      )
      expect(pending).toMatchObject({ payment_session_id: dropped.id, state: "started", error_message: expect.stringContaining("refused") })
      expect(await psp.intent(dropped.data.id)).toMatchObject({ status: "pending" })

      await psp.behaviour({ deletePayment: null })
      await waitForSettledJournal(collection.id)
      expect(await psp.intent(dropped.data.id)).toMatchObject({ status: "canceled" })
    })
  })

  describe("authorized sessions", () => {
    /** manual 600 authorized, test-pay 400 refused by its provider: partially_authorized. */
    async function partiallyAuthorized() {
      const { collection, sessions } = await collectionWith(1000, [
        { provider_id: "manual", amount: 600 },
        { provider_id: "test-pay", amount: 400 },
      ])
      const manual = sessions.find((s) => s.provider_id === "manual")
      const tp = sessions.find((s) => s.provider_id === "test-pay")
      await psp.behaviour({ authorizePayment: { fail: "refuse", times: 1 } })
      const refused = await authorizeBatch(collection.id, [manual.id, tp.id])
      expect(refused.status).toBe(422)
      expect(refused.body.type).toBe("payment_authorization_error")
      expect(await collectionRow(collection.id)).toEqual({ status: "partially_authorized", authorized_amount: 600 })
      return { collection, manual, tp }
    }

    it("an authorized session left out → 400 not_allowed, nothing changed", async () => {
      const { collection, manual, tp } = await partiallyAuthorized()
      const before = await psp.state()

      const res = await batch(collection.id, [{ provider_id: "test-pay", amount: 1000 }])

      expect(res.status).toBe(400)
      expect(res.body.type).toBe("not_allowed")
      expect((await sessionRows(collection.id)).map((r) => r.id).sort()).toEqual([manual.id, tp.id].sort())
      const after = await psp.state()
      expect(after.calls.initiatePayment).toBe(before.calls.initiatePayment)
      expect(after.calls.deletePayment).toBe(before.calls.deletePayment)
      expect(after.intents.map((i) => i.id)).toEqual([tp.data.id])
      expect(await collectionRow(collection.id)).toEqual({ status: "partially_authorized", authorized_amount: 600 })
    })

    it("an authorized session listed with another amount → 400 not_allowed, nothing changed", async () => {
      const { collection, manual, tp } = await partiallyAuthorized()

      const res = await batch(collection.id, [
        { provider_id: "manual", amount: 500, session_id: manual.id },
        { provider_id: "test-pay", amount: 500, session_id: tp.id },
      ])

      expect(res.status).toBe(400)
      expect(res.body.type).toBe("not_allowed")
      const rows = await sessionRows(collection.id)
      expect(Object.fromEntries(rows.map((r) => [r.id, [r.amount, r.status]]))).toEqual({
        [manual.id]: [600, "authorized"],
        [tp.id]: [400, "error"],
      })
      expect((await psp.state()).intents).toEqual([expect.objectContaining({ id: tp.data.id, amount: 400 })])
    })

    it("a shopper whose authorization failed rearranges the rest around the authorized session and pays", async () => {
      const { collection, manual, tp } = await partiallyAuthorized()

      // The refused test-pay part moves to the manual provider; the authorized session stays as it is.
      const rearranged = await batch(collection.id, [
        { provider_id: "manual", amount: 600, session_id: manual.id },
        { provider_id: "manual", amount: 400 },
      ])

      expect(rearranged.status).toBe(200)
      const pc = rearranged.body.payment_collection
      expect(pc.status).toBe("partially_authorized")
      expect(pc.payment_sessions).toHaveLength(2)
      const kept = pc.payment_sessions.find((s: any) => s.id === manual.id)
      expect(kept).toMatchObject({ status: "authorized", amount: 600 })
      const added = pc.payment_sessions.find((s: any) => s.id !== manual.id)
      expect(added).toMatchObject({ provider_id: "manual", amount: 400, status: "pending" })
      expect(await sessionExists(tp.id)).toEqual({ row: false, link: false })
      const state = await psp.state()
      expect(state.calls.deletePayment).toBe(1)
      expect(state.intents).toEqual([expect.objectContaining({ id: tp.data.id, status: "canceled" })])

      const paid = await authorizeBatch(collection.id, [added.id])

      expect(paid.status).toBe(200)
      expect(paid.body.payment_collection).toMatchObject({ status: "authorized", authorized_amount: 1000 })
      expect(await collectionRow(collection.id)).toEqual({ status: "authorized", authorized_amount: 1000 })
      const { rows: payments } = await db.query(
        `SELECT p.amount, p.provider_id FROM payment p
           JOIN payment_collection_payments pcp ON pcp.payment_id = p.id
          WHERE pcp.payment_collection_id = $1 ORDER BY p.amount`,
        [collection.id]
      )
      expect(payments).toEqual([
        { amount: 400, provider_id: "manual" },
        { amount: 600, provider_id: "manual" },
      ])
    })

    it("can retry the refused provider with a fresh session", async () => {
      const { collection, manual, tp } = await partiallyAuthorized()

      const retried = await batch(collection.id, [
        { provider_id: "manual", amount: 600, session_id: manual.id },
        { provider_id: "test-pay", amount: 400 },
      ])
      expect(retried.status).toBe(200)
      const fresh = retried.body.payment_collection.payment_sessions.find((s: any) => s.provider_id === "test-pay")
      expect(fresh.id).not.toBe(tp.id)
      await psp.confirmSession(fresh)

      const paid = await authorizeBatch(collection.id, [fresh.id])

      expect(paid.status).toBe(200)
      expect(paid.body.payment_collection).toMatchObject({ status: "authorized", authorized_amount: 1000 })
      const state = await psp.state()
      expect(state.live).toEqual([expect.objectContaining({ id: fresh.data.id, status: "authorized" })])
    })
  })

  describe("collection status", () => {
    it.each(["canceled", "authorized"])("a %s collection → 400 not_allowed, nothing written", async (status) => {
      const collection = await createPaymentCollection({ regionId: region.id, amount: 1000, status })

      const res = await batch(collection.id, [{ provider_id: "test-pay", amount: 1000 }])

      expect(res.status).toBe(400)
      expect(res.body.type).toBe("not_allowed")
      expect(await sessionRows(collection.id)).toEqual([])
      expect((await psp.state()).calls.initiatePayment).toBe(0)
    })

    it("a canceled collection keeps its sessions", async () => {
      const { collection, sessions } = await collectionWith(1000, [{ provider_id: "test-pay", amount: 1000 }])
      await db.query(`UPDATE payment_collection SET status = 'canceled' WHERE id = $1`, [collection.id])

      const res = await batch(collection.id, [{ provider_id: "manual", amount: 1000 }])

      expect(res.status).toBe(400)
      expect(res.body.type).toBe("not_allowed")
      expect((await sessionRows(collection.id)).map((r) => r.id)).toEqual([sessions[0].id])
      expect((await psp.state()).calls.deletePayment).toBe(0)
    })

    it("an unknown collection → 404 not_found", async () => {
      const res = await batch("paycol_does_not_exist", [{ provider_id: "manual", amount: 1000 }])
      expect(res.status).toBe(404)
      expect(res.body.type).toBe("not_found")
    })
  })
})
