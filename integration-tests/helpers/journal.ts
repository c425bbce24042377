import { db } from "./factories"
import { waitFor } from "./payments"

// The attempt journal (payment_collection_attempt) as a spec reads it: one row
// per provider call, and whether anything is left unfinished.

export interface AttemptRow {
  id: string
  payment_collection_id: string
  payment_session_id: string | null
  provider_id: string
  operation: string
  state: string
  outcome: string | null
  error_code: string | null
  error_message: string | null
}

const OPEN = ["started", "answered", "uncertain", "needs_attention"]

/** The journal rows of these collections, oldest first. */
export async function attemptRows(collectionIds: string | string[]): Promise<AttemptRow[]> {
  const { rows } = await db.query(
    `SELECT id, payment_collection_id, payment_session_id, provider_id, operation, state, outcome, error_code, error_message
       FROM payment_collection_attempt WHERE payment_collection_id = ANY($1) ORDER BY created_at, id`,
    [Array.isArray(collectionIds) ? collectionIds : [collectionIds]]
  )
  return rows
}

/** Waits until no journal row of these collections is open (the request or the reconciler finished them all). */
export async function waitForSettledJournal(collectionIds: string | string[], timeoutMs = 15_000): Promise<AttemptRow[]> {
  let rows: AttemptRow[] = []
  await waitFor(
    "every provider call to be finished",
    async () => {
      rows = await attemptRows(collectionIds)
      return rows.every((row) => !OPEN.includes(row.state))
    },
    { timeoutMs, intervalMs: 100 }
  )
  return rows
}
