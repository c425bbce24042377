import { EntityManager } from "typeorm"
import { updatedRows } from "./collection-writes"

/**
 * The reads and writes of what a collection holds at its providers once paid:
 * its payments (authorized, captured, released), the order edit it pays, the
 * provider events acted on, and when a pending session is next asked about.
 */

export type PaymentRow = {
  id: string
  provider_id: string
  amount: number
  currency_code: string
  data: Record<string, unknown>
  captured_at: Date | null
  canceled_at: Date | null
}

/** The collection's payments still holding money at their provider: not captured, not canceled. */
export async function heldPayments(tx: EntityManager, collectionId: string): Promise<PaymentRow[]> {
  return await tx.query(
    `SELECT p.id, p.provider_id, p.amount, p.currency_code, p.data, p.captured_at, p.canceled_at
       FROM payment_collection_payments pcp JOIN payment p ON p.id = pcp.payment_id
      WHERE pcp.payment_collection_id = $1 AND p.captured_at IS NULL AND p.canceled_at IS NULL
      ORDER BY p.created_at, p.id`,
    [collectionId]
  )
}

/** The collection's payment of one provider object (a Stripe intent), if it has one. */
export async function paymentOfProviderObject(tx: EntityManager, collectionId: string, objectId: string): Promise<PaymentRow | undefined> {
  const [row]: PaymentRow[] = await tx.query(
    `SELECT p.id, p.provider_id, p.amount, p.currency_code, p.data, p.captured_at, p.canceled_at
       FROM payment_collection_payments pcp JOIN payment p ON p.id = pcp.payment_id
      WHERE pcp.payment_collection_id = $1 AND p.data->>'id' = $2`,
    [collectionId, objectId]
  )
  return row
}

/** A capture made at the provider (not through Medusa), recorded as core's capture records it. */
export async function markPaymentCaptured(tx: EntityManager, paymentId: string, data: Record<string, unknown>): Promise<boolean> {
  const rows = await tx.query(
    `UPDATE payment SET captured_at = now(), data = $2, updated_at = now()
      WHERE id = $1 AND captured_at IS NULL RETURNING id`,
    [paymentId, JSON.stringify(data)]
  )
  return updatedRows(rows).length > 0
}

/**
 * A collection whose holds are being released: its uncaptured payments and
 * unauthorized-by-now sessions canceled, the collection `canceled`.
 */
export async function cancelCollection(tx: EntityManager, collectionId: string, paymentIds: string[]): Promise<void> {
  await tx.query(
    `WITH payments AS (
            UPDATE payment SET canceled_at = now(), updated_at = now() WHERE id = ANY($2) AND canceled_at IS NULL),
          sessions AS (
            UPDATE payment_session ps SET status = 'canceled', updated_at = now()
              FROM payment_collection_sessions pcs
             WHERE pcs.payment_session_id = ps.id AND pcs.payment_collection_id = $1)
     UPDATE payment_collection SET status = 'canceled', updated_at = now() WHERE id = $1`,
    [collectionId, paymentIds]
  )
}

export type OrderEditRow = { id: string; order_id: string; status: string }

/** The order edit a collection pays, with its status as core derives it (models/order-edit.ts). */
export async function orderEditOf(tx: EntityManager, collectionId: string): Promise<OrderEditRow | undefined> {
  const [row]: OrderEditRow[] = await tx.query(
    `SELECT id, order_id,
            CASE WHEN canceled_at IS NOT NULL THEN 'canceled'
                 WHEN confirmed_at IS NOT NULL THEN 'confirmed'
                 WHEN declined_at IS NOT NULL THEN 'declined'
                 WHEN requested_at IS NOT NULL THEN 'requested'
                 ELSE 'created' END AS status
       FROM order_edit WHERE payment_collection_id = $1
      ORDER BY created_at DESC LIMIT 1`,
    [collectionId]
  )
  return row
}

/** The collection an order edit is paid with, if any. */
export async function collectionOfOrderEdit(manager: EntityManager, orderEditId: string): Promise<string | undefined> {
  const [row]: { payment_collection_id: string | null }[] = await manager.query(
    `SELECT payment_collection_id FROM order_edit WHERE id = $1`,
    [orderEditId]
  )
  return row?.payment_collection_id ?? undefined
}

/** Records that a provider event was acted on; false when it already was (a delivery again). */
export async function recordProviderEvent(
  tx: EntityManager,
  event: { id: string; providerId: string; collectionId: string }
): Promise<boolean> {
  const rows: unknown[] = await tx.query(
    `INSERT INTO payment_collection_provider_event (event_id, provider_id, payment_collection_id)
     VALUES ($1, $2, $3) ON CONFLICT (event_id) DO NOTHING RETURNING event_id`,
    [event.id, event.providerId, event.collectionId]
  )
  return rows.length > 0
}

/** Retention of the events acted on, with the journal's. */
export async function pruneProviderEvents(manager: EntityManager, retentionDays: number): Promise<number> {
  const rows = await manager.query(
    `DELETE FROM payment_collection_provider_event
      WHERE event_id IN (SELECT event_id FROM payment_collection_provider_event
                          WHERE created_at < now() - make_interval(days => $1) LIMIT 1000)
      RETURNING event_id`,
    [retentionDays]
  )
  return updatedRows(rows).length
}

export type SessionToCheck = { payment_session_id: string; payment_collection_id: string; checks: number }

/**
 * Sessions still waiting for the shopper (pending, requires_more) of
 * collections still to be paid, untouched for `minAgeMs` (a storefront mid-way
 * reports its own authorization) and changed within the window, whose next
 * check is due: what the status sync asks providers about. `cart_id IS NULL`
 * says nothing new (a collection's sessions have no cart; core's too) but lets
 * the partial index of the waiting sessions (migration
 * CreatePaymentCollectionReconcilerIndexes) leave the carts' sessions out.
 */
export async function sessionsToCheck(
  manager: EntityManager,
  windowHours: number,
  minAgeMs: number,
  limit: number
): Promise<SessionToCheck[]> {
  return await manager.query(
    `SELECT ps.id AS payment_session_id, pcs.payment_collection_id, COALESCE(c.checks, 0) AS checks
       FROM payment_session ps
       JOIN payment_collection_sessions pcs ON pcs.payment_session_id = ps.id
       JOIN payment_collection pc ON pc.id = pcs.payment_collection_id
       LEFT JOIN payment_collection_status_check c ON c.payment_session_id = ps.id
      WHERE ps.status IN ('pending', 'requires_more') AND ps.payment_authorized_at IS NULL AND ps.cart_id IS NULL
        AND ps.updated_at > now() - make_interval(hours => $1)
        AND ps.updated_at < now() - make_interval(secs => $2::double precision / 1000)
        AND pc.status IN ('not_paid', 'awaiting', 'partially_authorized') AND pc.deleted_at IS NULL
        AND (c.next_check_at IS NULL OR c.next_check_at <= now())
      ORDER BY c.next_check_at NULLS FIRST
      LIMIT $3`,
    [windowHours, minAgeMs, limit]
  )
}

/** When the session is asked about next: `afterMs` from now. */
export async function scheduleCheck(manager: EntityManager, sessionId: string, checks: number, afterMs: number): Promise<void> {
  await manager.query(
    `INSERT INTO payment_collection_status_check (payment_session_id, checks, next_check_at)
     VALUES ($1, $2, now() + make_interval(secs => $3::double precision / 1000))
     ON CONFLICT (payment_session_id) DO UPDATE SET checks = EXCLUDED.checks, next_check_at = EXCLUDED.next_check_at`,
    [sessionId, checks, afterMs]
  )
}

/** Retention of the status sync's bookkeeping: rows of sessions it no longer asks about. */
export async function pruneStatusChecks(manager: EntityManager, windowHours: number): Promise<number> {
  const rows = await manager.query(
    `DELETE FROM payment_collection_status_check c
      WHERE NOT EXISTS (
              SELECT 1 FROM payment_session ps
               WHERE ps.id = c.payment_session_id AND ps.status IN ('pending', 'requires_more')
                 AND ps.updated_at > now() - make_interval(hours => $1))
      RETURNING c.payment_session_id`,
    [windowHours]
  )
  return updatedRows(rows).length
}
