import { TransactionBaseService } from "@medusajs/medusa"
import { MedusaError } from "medusa-core-utils"
import { EntityManager } from "typeorm"

/** A journal row as the admin sees it: never any provider data. */
export type AttemptView = {
  id: string
  session_id: string | null
  provider_id: string
  operation: string
  state: string
  outcome: string | null
  error_code: string | null
  error_message: string | null
  amount: number | null
  latency_ms: number | null
  request_id: string | null
  created_at: Date
}

export type AttemptPage = { attempts: AttemptView[]; count: number; limit: number; offset: number }

type InjectedDependencies = { manager: EntityManager }

/** The columns an admin may read; provider_data stays server-side. */
const VIEW_COLUMNS = `id, payment_session_id AS session_id, provider_id, operation, state, outcome,
  error_code, error_message, amount, latency_ms, request_id, created_at`

/**
 * The attempt journal's read side: what the plugin asked each provider for a
 * collection, and how it ended, newest first.
 */
export default class PaymentAttemptsService extends TransactionBaseService {
  constructor(container: InjectedDependencies, options?: Record<string, unknown>) {
    // eslint-disable-next-line prefer-rest-params
    super(container, options)
  }

  async listForCollection(
    collectionId: string,
    page: { limit: number; offset: number }
  ): Promise<AttemptPage> {
    const [row]: { exists: boolean; count: number; attempts: AttemptView[] | null }[] =
      await this.activeManager_.query(
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
}
