import { TransactionBaseService } from "@medusajs/medusa"
import { MedusaError } from "medusa-core-utils"
import { EntityManager } from "typeorm"
import { listAttempts } from "../journal/attempt-log"
import type { AttemptPage } from "../journal/attempt-types"

/** A session as the admin sees it: never its provider `data` (a Stripe intent's client_secret). */
export type OrderPaymentSessionView = {
  id: string
  provider_id: string
  amount: number
  status: string
  payment_authorized_at: Date | null
  created_at: Date
}

/** A payment as the admin sees it: never its provider `data`. */
export type OrderPaymentView = {
  id: string
  provider_id: string
  amount: number
  currency_code: string
  amount_refunded: number
  captured_at: Date | null
  canceled_at: Date | null
  created_at: Date
}

export type OrderPaymentCollectionView = {
  id: string
  status: string
  amount: number
  authorized_amount: number | null
  currency_code: string
  description: string | null
  created_at: Date
  order_edit: { id: string; status: string }
  payment_sessions: OrderPaymentSessionView[]
  payments: OrderPaymentView[]
  /** Provider calls of this collection that the plugin cannot settle alone (attempts in needs_attention). */
  needs_attention: number
  /** The first page of the attempt log; later pages: GET /admin/payment-collections/:id/attempts. */
  attempts: AttemptPage
}

/** How many attempt log entries come inline with each collection. */
export const INLINE_ATTEMPTS = 10

type InjectedDependencies = {
  manager: EntityManager
}

// OrderEdit's status is not a column: core derives it after load
// (models/order-edit.ts, loadStatus), with this precedence.
const ORDER_EDIT_STATUS = `CASE
    WHEN oe.canceled_at IS NOT NULL THEN 'canceled'
    WHEN oe.confirmed_at IS NOT NULL THEN 'confirmed'
    WHEN oe.declined_at IS NOT NULL THEN 'declined'
    WHEN oe.requested_at IS NOT NULL THEN 'requested'
    ELSE 'created' END`

/**
 * What the admin's order page shows about the payment collections of an
 * order's edits (`order_edit.payment_collection_id`): each collection with its
 * sessions, payments and the first page of its attempt log. Only the columns
 * listed here leave the server.
 */
export default class OrderPaymentCollectionsService extends TransactionBaseService {
  constructor(container: InjectedDependencies, options?: Record<string, unknown>) {
    super(container, options)
  }

  async listForOrder(orderId: string): Promise<OrderPaymentCollectionView[]> {
    const [row]: {
      exists: boolean
      collections: Omit<OrderPaymentCollectionView, "attempts">[] | null
    }[] = await this.activeManager_.query(
      `SELECT EXISTS (SELECT 1 FROM "order" WHERE id = $1) AS exists,
              (SELECT json_agg(c ORDER BY c.created_at DESC, c.id DESC) FROM (
                 SELECT pc.id, pc.status, pc.amount, pc.authorized_amount, pc.currency_code,
                        pc.description, pc.created_at,
                        json_build_object('id', oe.id, 'status', ${ORDER_EDIT_STATUS}) AS order_edit,
                        COALESCE((
                          SELECT json_agg(json_build_object(
                                   'id', ps.id, 'provider_id', ps.provider_id, 'amount', ps.amount,
                                   'status', ps.status, 'payment_authorized_at', ps.payment_authorized_at,
                                   'created_at', ps.created_at)
                                 ORDER BY ps.created_at, ps.id)
                            FROM payment_collection_sessions pcs
                            JOIN payment_session ps ON ps.id = pcs.payment_session_id
                           WHERE pcs.payment_collection_id = pc.id), '[]') AS payment_sessions,
                        COALESCE((
                          SELECT json_agg(json_build_object(
                                   'id', p.id, 'provider_id', p.provider_id, 'amount', p.amount,
                                   'currency_code', p.currency_code, 'amount_refunded', p.amount_refunded,
                                   'captured_at', p.captured_at, 'canceled_at', p.canceled_at,
                                   'created_at', p.created_at)
                                 ORDER BY p.created_at, p.id)
                            FROM payment_collection_payments pcp
                            JOIN payment p ON p.id = pcp.payment_id
                           WHERE pcp.payment_collection_id = pc.id), '[]') AS payments,
                        (SELECT count(*)::int FROM payment_collection_attempt a
                          WHERE a.payment_collection_id = pc.id AND a.state = 'needs_attention') AS needs_attention
                   FROM order_edit oe
                   JOIN payment_collection pc ON pc.id = oe.payment_collection_id
                  WHERE oe.order_id = $1 AND pc.deleted_at IS NULL) c) AS collections`,
      [orderId]
    )
    if (!row.exists) {
      throw new MedusaError(MedusaError.Types.NOT_FOUND, `Order with id ${orderId} was not found`)
    }
    const collections = row.collections ?? []
    const views: OrderPaymentCollectionView[] = []
    for (const collection of collections) {
      views.push({
        ...collection,
        attempts: await listAttempts(this.activeManager_, collection.id, {
          limit: INLINE_ATTEMPTS,
          offset: 0,
        }),
      })
    }
    return views
  }
}
