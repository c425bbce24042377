import { hostname } from "os"
import { randomBytes } from "crypto"

/**
 * The attempt journal: one row per call the plugin makes to a payment
 * provider. A row's state says how far its effect got. Open (still to settle):
 *
 *   started          written and committed BEFORE the provider is called
 *   answered         the provider answered with an effect the database does not hold yet
 *   uncertain        the call threw, timed out or lost its connection: it may have acted
 *   needs_attention  still open, and a person should look: the plugin cannot settle it
 *                    alone (no finder) or has not managed to for a day; announced once
 *
 * Closed:
 *
 *   committed  the request's transaction committed the rows for it (same transaction)
 *   undone     the request did not commit, and nothing of it remains at the provider
 *   adopted    the effect (an authorization) was recorded in the database after its request
 *   failed     the provider refused, naming its reason: no effect
 *   resolved   closed by an admin
 *
 * Open rows of requests that are over are settled by the request itself or,
 * when it could not (it died, the provider did not answer), by the reconciler.
 */
export type AttemptState =
  | "started"
  | "answered"
  | "uncertain"
  | "needs_attention"
  | "committed"
  | "undone"
  | "adopted"
  | "failed"
  | "resolved"

export type ClosedState = Exclude<AttemptState, "started" | "answered" | "uncertain" | "needs_attention">

export const OPEN_STATES = ["started", "answered", "uncertain", "needs_attention"] as const

/** The open states as SQL (a literal list, so the partial indexes on them apply). */
export const OPEN_STATES_SQL = `(${OPEN_STATES.map((s) => `'${s}'`).join(", ")})`

export type AttemptOperation = "initiate" | "update" | "authorize" | "retrieve" | "status" | "find" | "delete" | "cancel"

/** A full journal row, provider data included (server-side only). */
export type AttemptRow = {
  id: string
  payment_collection_id: string
  payment_session_id: string | null
  provider_id: string
  operation: AttemptOperation
  state: AttemptState
  outcome: string | null
  amount: number | null
  currency_code: string | null
  provider_data: Record<string, unknown> | null
  request_id: string | null
  process: string
  recovery_attempts: number
  created_at: Date
  answered_at: Date | null
}

export type NewAttempt = {
  collectionId: string
  sessionId?: string | null
  providerId: string
  operation: AttemptOperation
  amount?: number | null
  currencyCode?: string | null
  /** What the call is about (for a delete: the session data the provider needs). */
  providerData?: Record<string, unknown> | null
  requestId?: string | null
  idempotencyKey?: string | null
}

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

/** This process, as journal rows name their owner. */
export const PROCESS_ID = `${hostname()}:${process.pid}:${randomBytes(3).toString("hex")}`

/** The row a new attempt becomes once written (`started`). */
export function startedRow(id: string, attempt: NewAttempt): AttemptRow {
  return {
    id,
    payment_collection_id: attempt.collectionId,
    payment_session_id: attempt.sessionId ?? null,
    provider_id: attempt.providerId,
    operation: attempt.operation,
    state: "started",
    outcome: null,
    amount: attempt.amount ?? null,
    currency_code: attempt.currencyCode ?? null,
    provider_data: attempt.providerData ?? null,
    request_id: attempt.requestId ?? null,
    process: PROCESS_ID,
    recovery_attempts: 0,
    created_at: new Date(),
    answered_at: null,
  }
}
