import { adminHeaders, createApi, HttpResponse } from "./http"
import { db, freeCountry } from "./factories"
import { orderEditSeed, Shop } from "./order-edit-seed"
import { waitFor } from "./payments"

// A shop paying order edits with the real medusa-payment-stripe (provider
// "stripe", against the fake Stripe API) next to manual and test-pay, on the
// backend at `url`, and what specs read about its edits and collections.

function ok<T = any>(what: string, res: HttpResponse<T>): T {
  if (res.status < 200 || res.status >= 300) throw new Error(`${what} answered ${res.status}: ${res.text}`)
  return res.body
}

/** A region of its own country offering manual, test-pay and stripe, a test-ship option and a 2000 mug. */
export async function createStripeShop(url: string): Promise<Shop> {
  const shop = await orderEditSeed.createShop(url, { adminHeaders: adminHeaders(), countryCode: await freeCountry() })
  ok(
    "POST /admin/regions/:id/payment-providers",
    await createApi(url, adminHeaders()).post(`/admin/regions/${shop.regionId}/payment-providers`, { provider_id: "stripe" })
  )
  return shop
}

export interface RequestedEdit {
  order: any
  edit: any
  collectionId: string
  /** What the shopper owes: the edit's difference_due, the collection's amount */
  due: number
}

/** An order of one mug, and an edit adding `quantity` more that the admin requested (4000 due for 2). */
export async function requestEdit(url: string, shop: Shop, quantity = 2): Promise<RequestedEdit> {
  const order = await orderEditSeed.placeOrder(url, shop)
  const edit = await orderEditSeed.requestOrderEdit(url, shop, order.id, { adminHeaders: adminHeaders(), quantity })
  return { order, edit, collectionId: edit.payment_collection_id, due: edit.difference_due }
}

/** The shopper starts paying the whole collection with Stripe: its one session (data: the intent, client_secret). */
export async function stripeSession(url: string, collectionId: string): Promise<any> {
  const res = await createApi(url).post(`/store/payment-collections/${collectionId}/sessions`, { provider_id: "stripe" })
  const [session] = ok("POST /store/payment-collections/:id/sessions", res).payment_collection.payment_sessions
  return session
}

/** An order edit's status as core derives it (models/order-edit.ts), with its confirmation. */
export async function orderEditRow(id: string): Promise<{ status: string; confirmed_by: string | null; confirmed_at: Date | null }> {
  const { rows } = await db.query(
    `SELECT CASE WHEN canceled_at IS NOT NULL THEN 'canceled'
                 WHEN confirmed_at IS NOT NULL THEN 'confirmed'
                 WHEN declined_at IS NOT NULL THEN 'declined'
                 WHEN requested_at IS NOT NULL THEN 'requested'
                 ELSE 'created' END AS status, confirmed_by, confirmed_at
       FROM order_edit WHERE id = $1`,
    [id]
  )
  return rows[0]
}

/** Waits until the collection has `status`; answers when it was seen (Date.now()). */
export async function waitForCollectionStatus(collectionId: string, status: string, timeoutMs = 20_000): Promise<number> {
  return waitFor(
    `payment collection ${collectionId} to be ${status}`,
    async () => {
      const { rows } = await db.query(`SELECT status FROM payment_collection WHERE id = $1`, [collectionId])
      return rows[0]?.status === status ? Date.now() : 0
    },
    { timeoutMs, intervalMs: 50 }
  )
}

/** Waits until the order edit has `status`; answers when it was seen (Date.now()). */
export async function waitForEditStatus(editId: string, status: string, timeoutMs = 20_000): Promise<number> {
  return waitFor(
    `order edit ${editId} to be ${status}`,
    async () => ((await orderEditRow(editId))?.status === status ? Date.now() : 0),
    { timeoutMs, intervalMs: 50 }
  )
}

/** The provider events the plugin acted on for a collection (payment_collection_provider_event). */
export async function providerEvents(collectionId: string): Promise<string[]> {
  const { rows } = await db.query(
    `SELECT event_id FROM payment_collection_provider_event WHERE payment_collection_id = $1 ORDER BY created_at, event_id`,
    [collectionId]
  )
  return rows.map((r: { event_id: string }) => r.event_id)
}

/** Waits until the plugin has acted on the provider event `eventId` (its row exists). */
export async function waitForProviderEvent(collectionId: string, eventId: string, timeoutMs = 20_000): Promise<void> {
  await waitFor(`provider event ${eventId} to be acted on`, async () => (await providerEvents(collectionId)).includes(eventId), {
    timeoutMs,
    intervalMs: 50,
  })
}
