import { EntityManager } from "typeorm"
import { MedusaError } from "medusa-core-utils"
import { AttemptPage, AttemptView } from "./attempt-types"

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
