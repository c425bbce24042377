import { EntityManager } from "typeorm"
import { MedusaError } from "medusa-core-utils"
import { AttemptPage, AttemptView, OPEN_STATES_SQL } from "./attempt-types"

/** The columns an admin may read; provider_data stays server-side. */
const VIEW_COLUMNS = `id, payment_session_id AS session_id, provider_id, operation, state, outcome,
  error_code, error_message, amount, latency_ms, request_id, created_at`

/** The attempt log as the admin reads it: every call of one collection, newest first, never provider data. */
export async function listAttempts(
  manager: EntityManager,
  collectionId: string,
  page: { limit: number; offset: number }
): Promise<AttemptPage> {
  const [row]: { exists: boolean; count: number; attempts: AttemptView[] | null }[] =
    await manager.query(
      `SELECT EXISTS (SELECT 1 FROM payment_collection WHERE id = $1) AS exists,
              (SELECT count(*)::int FROM payment_collection_attempt WHERE payment_collection_id = $1) AS count,
              (SELECT json_agg(a) FROM (
                 SELECT ${VIEW_COLUMNS} FROM payment_collection_attempt
                  WHERE payment_collection_id = $1
                  ORDER BY created_at DESC, id DESC
                  LIMIT $2 OFFSET $3) a) AS attempts`,
      [collectionId, page.limit, page.offset]
    )
  if (!row.exists) {
    throw new MedusaError(
      MedusaError.Types.NOT_FOUND,
      `Payment collection with id ${collectionId} was not found`
    )
  }
  return { attempts: row.attempts ?? [], count: row.count, ...page }
}

/** An attempt of any collection, as the admin's list across collections shows it. */
export type AttemptAcrossCollections = AttemptView & { payment_collection_id: string; attention_at: Date | null }

/**
 * The attempts of every collection in one state, newest first — what
 * operations watch: `needs_attention` lists what the plugin cannot settle alone.
 */
export async function listAttemptsInState(
  manager: EntityManager,
  state: string,
  page: { limit: number; offset: number }
): Promise<{ attempts: AttemptAcrossCollections[]; count: number; limit: number; offset: number }> {
  const [row]: { count: number; attempts: AttemptAcrossCollections[] | null }[] = await manager.query(
    `SELECT (SELECT count(*)::int FROM payment_collection_attempt WHERE state = $1) AS count,
            (SELECT json_agg(a) FROM (
               SELECT ${VIEW_COLUMNS}, payment_collection_id, attention_at FROM payment_collection_attempt
                WHERE state = $1
                ORDER BY created_at DESC, id DESC
                LIMIT $2 OFFSET $3) a) AS attempts`,
    [state, page.limit, page.offset]
  )
  return { attempts: row.attempts ?? [], count: row.count, ...page }
}

/**
 * An admin closes an open attempt (a person settled what the plugin could
 * not): `resolved`, by that admin. Undefined when there is no such attempt;
 * an attempt already closed is answered as it is.
 */
export async function resolveAttempt(
  manager: EntityManager,
  attemptId: string,
  resolvedBy: string,
  note: string | undefined
): Promise<AttemptAcrossCollections | undefined> {
  const [row]: { attempt: AttemptAcrossCollections }[] = await manager.query(
    `WITH closed AS (
       UPDATE payment_collection_attempt
          SET state = 'resolved', finished_at = now(), resolved_by = $2, next_attempt_at = NULL,
              error_message = COALESCE($3, error_message)
        WHERE id = $1 AND state IN ${OPEN_STATES_SQL}
        RETURNING ${VIEW_COLUMNS}, payment_collection_id, attention_at)
     SELECT row_to_json(a) AS attempt
       FROM (SELECT * FROM closed
             UNION ALL
             SELECT ${VIEW_COLUMNS}, payment_collection_id, attention_at FROM payment_collection_attempt
              WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM closed)) a`,
    [attemptId, resolvedBy, note ?? null]
  )
  return row?.attempt
}
