import { EntityManager } from "typeorm"
import { CollectionRow, SessionRow } from "./collection-queries"

/**
 * The plugin's writes, each a single statement: the rows core's
 * PaymentProviderService would write (same columns, same values), the join
 * rows that link them to the collection, and the journal rows marked
 * committed in the same statement, so they commit together or not at all.
 * The hot ones are the plugin's SQL functions (migration
 * CreatePaymentCollectionFunctions), planned once per connection.
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

export type SessionChanges = {
  created: NewSession[]
  updated: SessionUpdate[]
  removedIds: string[]
  committedAttemptIds: string[]
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
    changes.committedAttemptIds,
  ])
}

export type AuthorizationWrite = {
  sessionId: string
  status: string
  data: Record<string, unknown>
  /** Present when the session is authorized: its payment, linked to the collection. */
  payment?: {
    id: string
    amount: number
    currency_code: string
    provider_id: string
    data: Record<string, unknown>
  }
  committedAttemptIds: string[]
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
  const rows: SessionRow[] = await tx.query(`SELECT * FROM pcp_write_authorization_v1($1, $2, $3, $4, $5, $6)`, [
    collectionId,
    write.sessionId,
    write.status,
    JSON.stringify(write.data ?? {}),
    JSON.stringify(write.payment ? [write.payment] : []),
    write.committedAttemptIds,
  ])
  return rows[0]
}

/** A refused authorization: the session is marked `error` (core rolls it all back instead). */
export async function markSessionRefused(
  tx: EntityManager,
  sessionId: string,
  committedAttemptIds: string[]
): Promise<SessionRow> {
  const rows: SessionRow[] = await tx.query(
    `WITH journaled AS (
            UPDATE payment_collection_attempt
               SET state = 'committed', finished_at = now(), resolved_by = 'request'
             WHERE id = ANY($2::text[]) AND state IN ('started', 'answered'))
     UPDATE payment_session SET status = 'error', updated_at = now()
      WHERE id = $1
     RETURNING *`,
    [sessionId, committedAttemptIds]
  )
  return updatedRows<SessionRow>(rows)[0]
}

/**
 * A collection's status and authorized amount from its authorized sessions,
 * as one statement: the sum is computed from the rows, never carried over.
 */
export async function saveCollectionStatus(
  tx: EntityManager,
  collectionId: string,
  status: string,
  authorizedAmount: number,
  committedAttemptIds: string[] = []
): Promise<CollectionRow> {
  const rows = await tx.query(
    `WITH journaled AS (
            UPDATE payment_collection_attempt
               SET state = 'committed', finished_at = now(), resolved_by = 'request'
             WHERE id = ANY($4::text[]) AND state IN ('started', 'answered'))
     UPDATE payment_collection
        SET status = $2, authorized_amount = $3, updated_at = now()
      WHERE id = $1
      RETURNING *`,
    [collectionId, status, authorizedAmount, committedAttemptIds]
  )
  return updatedRows<CollectionRow>(rows)[0]
}

/** UPDATE ... RETURNING answers [rows, count] through TypeORM's postgres driver. */
export function updatedRows<T>(result: unknown): T[] {
  const rows = result as unknown[]
  return (Array.isArray(rows[0]) ? rows[0] : rows) as T[]
}
