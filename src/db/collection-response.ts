import { COLLECTION_COLUMNS, CollectionRow, RegionWithProviders, SESSION_COLUMNS, SessionRow } from "./collection-queries"

/**
 * The answers' JSON, key for key in core's order. Core serializes the
 * entities it holds: a row it loaded lists its columns in entity order, a row
 * it created during the request in the order its create() and save() filled
 * them in. The plugin does the same, so its answers are byte-compatible with
 * core's (core-compatibility.spec.ts compares them).
 */

/** `{ payment_collection }` of the session endpoints, as core answers it. */
export type CollectionWithSessions = CollectionRow & {
  payment_sessions: SessionRow[]
  /** Null when the region was deleted. */
  region: RegionWithProviders["region"] | null
}

/** `{ payment_collection }` of the batch authorize endpoint, as core answers it. */
export type CollectionWithPayments = CollectionRow & {
  payment_sessions: SessionRow[]
  payments: Record<string, unknown>[]
}

/** Core's PaymentProviderService.createSession: create({...}) then save(). */
const CREATED_SESSION_ORDER = [
  "cart_id", "provider_id", "is_initiated", "status", "data", "amount",
  "id", "is_selected", "idempotency_key", "payment_authorized_at", "created_at", "updated_at",
]
/** Core's PaymentProviderService.createPayment: create({...}) then save(). */
const CREATED_PAYMENT_ORDER = [
  "amount", "currency_code", "provider_id", "data",
  "id", "swap_id", "cart_id", "order_id", "captured_at", "canceled_at", "metadata", "idempotency_key",
  "created_at", "updated_at", "amount_refunded",
]

function pick<T>(row: Record<string, unknown>, columns: readonly string[]): T {
  return Object.fromEntries(columns.map((c) => [c, row[c]])) as T
}

/** `order`'s keys first, then the row's others (a merchant's extra columns) as they come. */
function inCreatedOrder<T>(row: Record<string, unknown>, order: readonly string[]): T {
  const ordered: Record<string, unknown> = {}
  for (const key of order) {
    if (key in row) {
      ordered[key] = row[key]
    }
  }
  return Object.assign(ordered, row) as T
}

/** A session with exactly core's columns, whichever statement read or wrote it. */
export function sessionResponse(session: SessionRow): SessionRow {
  return pick<SessionRow>(session, SESSION_COLUMNS)
}

/** A session this request created, as core answers one it just created. */
export function createdSessionResponse(session: SessionRow): SessionRow {
  return inCreatedOrder<SessionRow>(sessionResponse(session), CREATED_SESSION_ORDER)
}

/**
 * The collection with its sessions and region: the same fields in the same
 * order whether the answer came from the lock-free read or a locked write.
 */
export function collectionWithSessions(
  collection: CollectionRow,
  region: RegionWithProviders["region"] | null,
  sessions: SessionRow[],
  createdIds: ReadonlySet<string> = new Set()
): CollectionWithSessions {
  return {
    ...pick<CollectionRow>(collection, COLLECTION_COLUMNS),
    payment_sessions: sessions.map((s) => (createdIds.has(s.id) ? createdSessionResponse(s) : sessionResponse(s))),
    region,
  }
}

export function collectionWithPayments(
  collection: CollectionRow,
  sessions: SessionRow[],
  payments: Record<string, unknown>[],
  createdPaymentIds: ReadonlySet<string> = new Set()
): CollectionWithPayments {
  return {
    ...pick<CollectionRow>(collection, COLLECTION_COLUMNS),
    payment_sessions: sessions.map(sessionResponse),
    payments: payments.map((p) =>
      createdPaymentIds.has(p.id as string) ? inCreatedOrder<Record<string, unknown>>(p, CREATED_PAYMENT_ORDER) : p
    ),
  }
}
