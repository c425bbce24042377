import { Api, adminApi, adminHeaders, createApi } from "./helpers/http"
import { createPaymentCollection, createRegion, db, freeCountry } from "./helpers/factories"
import { psp } from "./helpers/fake-psp"
import { ExtraBackend, stopExtraBackends } from "./helpers/backend"
import { base, linkedSessions, orphanSessions, sleep, waitFor } from "./helpers/payments"
import { orderEditSeed, Shop } from "./helpers/order-edit-seed"
import { RecordedEvent } from "./helpers/events"
import {
  MODES,
  Timings,
  agree,
  allBackendUrls,
  eventsOn,
  providerAndDatabase,
  pspCallAt,
  startTwoBackends,
  waitForJournal,
} from "./helpers/provider-agreement"

// Never give up on money. What the plugin cannot settle alone is
// `needs_attention`: a call that may have created something at a provider
// without a finder (test-nofind), or a delete the provider has refused for
// over a day. Such a row is still retried (backoff capped at an hour), never
// pruned while open, counted on the order's widget, listed at
// GET /admin/payment-collections/attempts?state=needs_attention, announced
// once with the event payment-collection.attempt_needs_attention, and closed
// by an admin who settled it by hand. Before, such calls were `unknown`
// (nothing looked them up), a delete was given up after 10 failures, and both
// were pruned after 30 days.

const EVENT = "payment-collection.attempt_needs_attention"

async function attempt(id: string) {
  const { rows } = await db.query(
    `SELECT id, state, operation, provider_id, payment_session_id, recovery_attempts, attention_at, next_attempt_at,
            EXTRACT(EPOCH FROM (next_attempt_at - now())) AS next_in_seconds, created_at
       FROM payment_collection_attempt WHERE id = $1`,
    [id]
  )
  return rows[0]
}

describe("needs_attention: what the plugin cannot settle alone is kept, retried, shown and announced once", () => {
  let backends: ExtraBackend[]
  let apis: Api[]
  let admins: Api[]
  let shop: Shop
  let region: any
  const timings = new Timings("needs attention")

  beforeAll(async () => {
    ;({ backends, apis } = await startTwoBackends())
    admins = backends.map((b) => createApi(b.url, adminHeaders()))
    shop = await orderEditSeed.createShop(apis[0].baseUrl, { adminHeaders: adminHeaders(), countryCode: await freeCountry() })
    const updated = await adminApi.post(`/admin/regions/${shop.regionId}`, { payment_providers: ["manual", "test-pay", "test-nofind"] })
    expect(updated.status).toBe(200)
    region = await createRegion({ providers: ["manual", "test-pay"] })
  }, 240_000)

  beforeEach(() => psp.reset())

  afterEach(async () => {
    expect(await orphanSessions()).toEqual([])
  })

  afterAll(async () => {
    timings.print()
    await psp.reset()
    await stopExtraBackends()
    await db.end()
  }, 60_000)

  /** The announcements of one attempt, from whichever backend delivered them. */
  async function announcementsOf(attemptId: string): Promise<RecordedEvent[]> {
    return (await eventsOn(allBackendUrls(backends), EVENT)).filter((e) => e.data?.id === attemptId)
  }

  async function waitForAnnouncement(attemptId: string): Promise<RecordedEvent[]> {
    return await waitFor(`the announcement of ${attemptId}`, async () => {
      const seen = await announcementsOf(attemptId)
      return seen.length ? seen : null
    }, { timeoutMs: 20_000, intervalMs: 200 }) as RecordedEvent[]
  }

  describe.each(MODES)("$name", (mode) => {
    const first = () => apis[mode.failing]
    const admin = () => admins[mode.next]

    it("an initiate at a provider without a finder acts then fails: needs_attention at once, announced once, listed, counted on the order, never pruned while open, closed by an admin", async () => {
      const url = first().baseUrl
      const order = await orderEditSeed.placeOrder(url, shop)
      const edit = await orderEditSeed.requestOrderEdit(url, shop, order.id, { adminHeaders: adminHeaders() })
      const collectionId: string = edit.payment_collection_id
      // A clean refusal first: a closed row of the same collection, to be pruned once old.
      await psp.behaviour({ initiatePayment: { fail: "refuse", times: 1, resourceId: collectionId } })
      expect((await first().post(`${base(collectionId)}/sessions`, { provider_id: "test-nofind" })).status).toBe(400)
      await psp.behaviour({ initiatePayment: { fail: "throw", afterEffect: true, times: 1, resourceId: collectionId } })

      const res = await first().post(`${base(collectionId)}/sessions`, { provider_id: "test-nofind" })

      expect({ status: res.status, code: res.body.code }).toEqual({ status: 502, code: "payment_provider_error" })
      expect(res.body.message).toContain("test-nofind")
      const failure = await pspCallAt({ method: "initiatePayment", resourceId: collectionId }, 1)
      // Nobody can know the intent's id: it stays live until a person settles it.
      expect(await providerAndDatabase(collectionId)).toEqual({ provider: [{ id: failure.intentId, amount: edit.difference_due }], database: [] })
      const flagged = await waitForJournal(
        collectionId,
        "the initiate to need attention",
        (rows) => rows.some((r) => r.operation === "initiate" && r.state === "needs_attention"),
        failure.at
      )
      timings.record(`initiate at test-nofind (${mode.name})`, "needs_attention after", flagged.ms)
      const row = flagged.rows.find((r) => r.state === "needs_attention")!
      expect(row).toMatchObject({ provider_id: "test-nofind", operation: "initiate", outcome: "error" })
      expect(flagged.rows.filter((r) => r.operation === "initiate").map((r) => r.state)).toEqual(["failed", "needs_attention"])

      // Announced once, with what a merchant's subscriber needs.
      const [announced] = await waitForAnnouncement(row.id)
      timings.record(`initiate at test-nofind (${mode.name})`, "announced after", announced.at - failure.at)
      expect(announced.data).toEqual({
        id: row.id,
        payment_collection_id: collectionId,
        payment_session_id: row.payment_session_id,
        provider_id: "test-nofind",
        operation: "initiate",
        reason: expect.stringContaining("no finder"),
      })
      // Still retried (with backoff), never announced again.
      const before = await attempt(row.id)
      await waitFor("another retry", async () => (await attempt(row.id)).recovery_attempts > before.recovery_attempts, { timeoutMs: 10_000 })
      await sleep(4000) // the event bus delivers staged events every 3 s
      expect(await announcementsOf(row.id)).toHaveLength(1)
      expect(await attempt(row.id)).toMatchObject({ state: "needs_attention", attention_at: expect.any(Date) })

      // Listed for operations (the default state is needs_attention) and counted on the order.
      for (const path of ["/admin/payment-collections/attempts?state=needs_attention", "/admin/payment-collections/attempts?limit=100"]) {
        const listed = await admin().get(path)
        expect(listed.status).toBe(200)
        expect(listed.body.attempts).toContainEqual(
          expect.objectContaining({
            id: row.id,
            payment_collection_id: collectionId,
            state: "needs_attention",
            provider_id: "test-nofind",
            operation: "initiate",
            attention_at: expect.any(String),
          })
        )
        expect(listed.body.attempts.every((a: any) => a.state === "needs_attention")).toBe(true)
        expect(listed.body.count).toBeGreaterThanOrEqual(1)
      }
      const widget = await admin().get(`/admin/orders/${order.id}/payment-collections`)
      expect(widget.status).toBe(200)
      expect(widget.body.payment_collections).toEqual([expect.objectContaining({ id: collectionId, needs_attention: 1 })])

      // Retention: both rows made 40 days old; the reconciler prunes the closed one, never the open one.
      await db.query(`UPDATE payment_collection_attempt SET created_at = now() - interval '40 days' WHERE payment_collection_id = $1`, [collectionId])
      await waitFor("the closed row to be pruned", async () =>
        (await db.query(`SELECT 1 FROM payment_collection_attempt WHERE payment_collection_id = $1 AND state = 'failed'`, [collectionId])).rowCount === 0
      )
      await sleep(1500) // three more passes
      expect(await attempt(row.id)).toMatchObject({ state: "needs_attention" })

      // The admin cancels the intent at the provider by hand, then closes the attempt.
      const byHand = await createApi(first().baseUrl).post("/test-providers/test-nofind/call/deletePayment", { args: [{ id: failure.intentId }] })
      expect(byHand.body).toMatchObject({ result: expect.objectContaining({ id: failure.intentId, status: "canceled" }) })
      const resolved = await admin().post(`/admin/payment-collections/attempts/${row.id}/resolve`, { note: "canceled at the provider by hand" })

      expect(resolved.status).toBe(200)
      expect(resolved.body.attempt).toMatchObject({ id: row.id, state: "resolved", payment_collection_id: collectionId })
      expect(await agree(collectionId)).toBe(true)
      const listedAfter = await admin().get("/admin/payment-collections/attempts?state=needs_attention&limit=100")
      expect(listedAfter.body.attempts.map((a: any) => a.id)).not.toContain(row.id)
      const widgetAfter = await admin().get(`/admin/orders/${order.id}/payment-collections`)
      expect(widgetAfter.body.payment_collections).toEqual([expect.objectContaining({ id: collectionId, needs_attention: 0 })])
      // Closed now, and 40 days old: retention takes it on the next pass.
      await waitFor("the resolved row to be pruned", async () => (await attempt(row.id)) === undefined)
      expect(await announcementsOf(row.id)).toHaveLength(1)
    })

    it("a delete the provider has refused for over a day: needs_attention, announced once, retried at least hourly until the provider takes it", async () => {
      const collection = await createPaymentCollection({ regionId: region.id, amount: 1100 })
      const created = await first().post(`${base(collection.id)}/sessions`, { provider_id: "test-pay" })
      expect(created.status).toBe(200)
      const session = created.body.payment_collection.payment_sessions[0]
      await psp.behaviour({ deletePayment: { fail: "refuse", intentId: session.data.id } })

      const res = await first().post(`${base(collection.id)}/sessions`, { provider_id: "manual" })

      expect(res.status).toBe(200)
      expect((await linkedSessions(collection.id)).map((s) => s.provider_id)).toEqual(["manual"])
      const refused = await pspCallAt({ method: "deletePayment", intentId: session.data.id })
      const { rows } = await waitForJournal(
        collection.id,
        "the refused delete to be journaled",
        (rs) => rs.some((r) => r.operation === "delete" && r.outcome === "refused"),
        refused.at
      )
      const row = rows.find((r) => r.operation === "delete")!
      expect(row).toMatchObject({ payment_session_id: session.id, provider_id: "test-pay", state: "started" })

      // Over a day old: the next refusal flags it.
      await db.query(`UPDATE payment_collection_attempt SET created_at = created_at - interval '25 hours' WHERE id = $1`, [row.id])
      const backdatedAt = Date.now()
      await waitFor("the delete to need attention", async () => (await attempt(row.id)).state === "needs_attention", { timeoutMs: 15_000 })
      timings.record(`delete refused for a day (${mode.name})`, "needs_attention after the next retry", Date.now() - backdatedAt)
      const flagged = await attempt(row.id)
      expect(flagged).toMatchObject({ operation: "delete", attention_at: expect.any(Date) })
      expect(Number(flagged.next_in_seconds)).toBeGreaterThan(0)
      expect(Number(flagged.next_in_seconds)).toBeLessThanOrEqual(3600)

      const [announced] = await waitForAnnouncement(row.id)
      expect(announced.data).toEqual({
        id: row.id,
        payment_collection_id: collection.id,
        payment_session_id: session.id,
        provider_id: "test-pay",
        operation: "delete",
        reason: expect.stringContaining("over a day"),
      })

      // Still retried: more refusals, still one announcement.
      const calls = (await psp.history({ method: "deletePayment", intentId: session.data.id })).length
      await waitFor("another retry", async () => (await psp.history({ method: "deletePayment", intentId: session.data.id })).length > calls, {
        timeoutMs: 15_000,
      })
      await sleep(4000)
      expect(await announcementsOf(row.id)).toHaveLength(1)
      expect(await attempt(row.id)).toMatchObject({ state: "needs_attention" })
      const listed = await admin().get("/admin/payment-collections/attempts?limit=100")
      expect(listed.body.attempts).toContainEqual(expect.objectContaining({ id: row.id, payment_collection_id: collection.id, operation: "delete" }))

      // However many refusals, the next try is at most an hour away.
      await db.query(`UPDATE payment_collection_attempt SET recovery_attempts = 40 WHERE id = $1`, [row.id])
      const tries = (await psp.history({ method: "deletePayment", intentId: session.data.id })).length
      await waitFor("one more retry", async () => (await psp.history({ method: "deletePayment", intentId: session.data.id })).length > tries, {
        timeoutMs: 30_000,
      })
      const capped = await waitFor("the backoff to be written", async () => {
        const a = await attempt(row.id)
        return a.recovery_attempts > 40 ? a : null
      })
      expect(Number(capped.next_in_seconds)).toBeGreaterThan(3500)
      expect(Number(capped.next_in_seconds)).toBeLessThanOrEqual(3600)

      // The provider takes it at last; the hour is played forward.
      await psp.behaviour({ deletePayment: null })
      await db.query(`UPDATE payment_collection_attempt SET next_attempt_at = now() WHERE id = $1`, [row.id])
      const resumedAt = Date.now()
      await waitFor("the delete to be done", async () => (await attempt(row.id)).state === "committed", { timeoutMs: 15_000 })
      timings.record(`delete refused for a day (${mode.name})`, "agree once the provider takes it", Date.now() - resumedAt)
      expect(await psp.intent(session.data.id)).toMatchObject({ status: "canceled" })
      expect(await agree(collection.id)).toBe(true)
      const widgetCount = await admin().get("/admin/payment-collections/attempts?limit=100")
      expect(widgetCount.body.attempts.map((a: any) => a.id)).not.toContain(row.id)
    })
  })
})
