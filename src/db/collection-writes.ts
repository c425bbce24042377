import { EntityManager } from "typeorm"
import { CollectionRow, SessionRow } from "./collection-queries"

/**
 * The plugin's writes, each a single statement: the rows core's
 * PaymentProviderService would write (same columns, same values) and the join
 * rows that link them to the collection. The hot ones are the plugin's SQL
 * functions (migration CreatePaymentCollectionFunctions), planned once per
 * connection; those also mark the request's journal rows committed
 * (pcp_commit_attempts_v1), so rows and journal commit together or not at all.
 */

export type NewSession = {
  id: string
  provider_id: string
  amount: number
  data: Record<string, unknown>
}

export type SessionUpdate = {
  id: string
  amount: number
  /** Undefined: the provider had nothing to change; the data stays. */
  data: Record<string, unknown> | undefined
}

/**
 * A journal row marked committed with the rows it describes, and its call's
 * latency; with `sweep_id`, a `find` row of that id (its data `sweep_data`) is
 * added with it, for the finder to look for a copy of the call.
 */
export type CommittedAttempt = {
  id: string
  latency_ms: number | null
  sweep_id?: string
  sweep_data?: Record<string, unknown>
}

export type SessionChanges = {
  created: NewSession[]
  updated: SessionUpdate[]
  removedIds: string[]
  committed: CommittedAttempt[]
}

/** Statuses PostgreSQL's payment_session_status_enum accepts. */
export const SESSION_STATUSES = ["authorized", "pending", "requires_more", "error", "canceled"]

/**
 * Inserts, updates and deletes a collection's sessions in one statement (the
 * join rows of deleted sessions go with them, ON DELETE CASCADE) and marks the
 * journal rows committed. Answers the inserted and updated rows.
 */
export async function writeSessionChanges(
  tx: EntityManager,
  collectionId: string,
  changes: SessionChanges
): Promise<SessionRow[]> {
  return await tx.query(`SELECT * FROM pcp_write_sessions_v1($1, $2, $3, $4, $5)`, [
    collectionId,
    JSON.stringify(changes.created),
    JSON.stringify(changes.updated.map((u) => ({ ...u, data: u.data ?? null }))),
    changes.removedIds,
    JSON.stringify(changes.committed),
  ])
}

export type AuthorizationWrite = {
  sessionId: string
  status: string
  data: Record<string, unknown>
  /** The session's new amount, when it changes with the authorization. */
  amount?: number
  /** Present when the session is authorized: its payment, linked to the collection. */
  payment?: {
    id: string
    amount: number
    currency_code: string
    provider_id: string
    data: Record<string, unknown>
  }
  committed: CommittedAttempt[]
}

/**
 * What core's authorizePayment + createPayment write for one session: its
 * status and data (and `payment_authorized_at` when authorized), the payment,
 * and the join row.
 */
export async function writeAuthorization(
  tx: EntityManager,
  collectionId: string,
  write: AuthorizationWrite
): Promise<SessionRow> {
  const rows: SessionRow[] = await tx.query(`SELECT * FROM pcp_write_authorization_v1($1, $2, $3, $4, $5, $6, $7)`, [
    collectionId,
    write.sessionId,
    write.status,
    JSON.stringify(write.data ?? {}),
    JSON.stringify(write.payment ? [write.payment] : []),
    JSON.stringify(write.committed),
    write.amount ?? null,
  ])
  return rows[0]
}

/** A refused authorization: the session is marked `error` (core rolls it all back instead). */
export async function markSessionRefused(tx: EntityManager, sessionId: string): Promise<SessionRow> {
  const rows: SessionRow[] = await tx.query(
    `UPDATE payment_session SET status = 'error', updated_at = now() WHERE id = $1 RETURNING *`,
    [sessionId]
  )
  return updatedRows<SessionRow>(rows)[0]
}

/**
 * A collection's status and authorized amount, as one statement (the amount
 * is computed by the caller from the authorized sessions, never carried over).
 */
export async function saveCollectionStatus(
  tx: EntityManager,
  collectionId: string,
  status: string,
  authorizedAmount: number
): Promise<CollectionRow> {
  const rows = await tx.query(
    `UPDATE payment_collection SET status = $2, authorized_amount = $3, updated_at = now()
      WHERE id = $1 RETURNING *`,
    [collectionId, status, authorizedAmount]
  )
  return updatedRows<CollectionRow>(rows)[0]
}

/** UPDATE ... RETURNING answers [rows, count] through TypeORM's postgres driver. */
export function updatedRows<T>(result: unknown): T[] {
  const rows = result as unknown[]
  return (Array.isArray(rows[0]) ? rows[0] : rows) as T[]
}

/** What core's markAsAuthorized writes: `authorized` for the whole amount, whatever the sessions say. */
export async function markCollectionAuthorized(tx: EntityManager, collectionId: string): Promise<CollectionRow> {
  const rows = await tx.query(
    `UPDATE payment_collection SET status = 'authorized', authorized_amount = amount, updated_at = now()
      WHERE id = $1 RETURNING *`,
    [collectionId]
  )
  return updatedRows<CollectionRow>(rows)[0]
}

/** Deletes the collection row (core deletes it too, not softly); its join rows go with it (ON DELETE CASCADE). */
export async function deleteCollection(tx: EntityManager, collectionId: string): Promise<void> {
  await tx.query(`DELETE FROM payment_collection WHERE id = $1`, [collectionId])
}

/** The order edits a collection pays (its order_edit rows), which keep it from being deleted. */
export async function orderEditsPaidBy(tx: EntityManager, collectionId: string): Promise<string[]> {
  const rows: { id: string }[] = await tx.query(`SELECT id FROM order_edit WHERE payment_collection_id = $1`, [collectionId])
  return rows.map((r) => r.id)
}
