import { EntityManager } from "typeorm"
import { updatedRows } from "../db/collection-writes"
import { JournalQueries } from "../db/journal-pool"
import { entityId } from "../lib/entity-id"
import { SettledOutcome } from "../providers/provider-client"
import { ResolvedPluginOptions } from "../types/options"
import { AttemptRow, ClosedState, NewAttempt, OPEN_STATES_SQL, PROCESS_ID, startedRow } from "./attempt-types"

const ROW_COLUMNS = `id, payment_collection_id, payment_session_id, provider_id, operation, state, outcome,
  amount, currency_code, provider_data, request_id, process, recovery_attempts, created_at, answered_at`

/** Backoff of a settling step that failed: doubling from the reconcile interval, never above an hour. */
const MAX_BACKOFF_SECONDS = 3600

const MAX_TEXT = 1000
const MAX_ID = 255

function clip(value: string | null | undefined, max: number): string | null {
  if (value === null || value === undefined) {
    return null
  }
  // PostgreSQL text cannot hold NUL.
  const clean = value.replace(/\u0000/g, "")
  return clean.length > max ? clean.slice(0, max) : clean
}

/**
 * Every write of the attempt journal (`payment_collection_attempt`), and the
 * reads the finisher and the reconciler make: on the journal's own pool, so a
 * `started` row is committed before its provider call whatever the request's
 * transaction holds, or inside a request's transaction where a row must commit
 * with the request's rows. Rows are marked committed by the plugin's SQL
 * write functions (pcp_commit_attempts_v1), in the same statement as the rows.
 */
export class AttemptStore {
  constructor(
    private readonly pool: JournalQueries,
    private readonly options: ResolvedPluginOptions
  ) {}

  /** How long a started call belongs to its request before the reconciler may finish it. */
  get leaseMs(): number {
    return 2 * this.options.provider_timeout_ms
  }

  /**
   * Records, committed, that a provider call is about to be made. If this
   * throws, the provider must not be called.
   */
  async start(attempt: NewAttempt): Promise<AttemptRow> {
    const id = entityId("pcatt")
    await this.query(`SELECT pcp_start_attempt_v1($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`, [
      id,
      attempt.collectionId,
      attempt.sessionId ?? null,
      attempt.providerId,
      attempt.operation,
      attempt.amount ?? null,
      attempt.currencyCode ?? null,
      attempt.providerData ? JSON.stringify(attempt.providerData) : null,
      clip(attempt.requestId, MAX_ID),
      clip(attempt.idempotencyKey, MAX_ID),
      PROCESS_ID,
      this.leaseMs,
    ])
    return startedRow(id, attempt)
  }

  /**
   * Records what the provider answered, the moment it answers: `answered`
   * with the data an undo needs, `failed` when it refused (no effect), or
   * `uncertain` when it failed in a way that may follow an effect.
   */
  async answer(
    id: string,
    outcome: SettledOutcome<unknown>,
    providerData?: Record<string, unknown> | null
  ): Promise<void> {
    const ok = outcome.kind === "ok"
    await this.query(`SELECT pcp_answer_attempt_v1($1, $2, $3, $4, $5, $6, $7)`, [
      id,
      ok ? "answered" : outcome.kind === "refused" ? "failed" : "uncertain",
      ok ? "ok" : outcome.kind,
      ok ? null : clip(outcome.kind === "refused" ? outcome.code ?? outcome.type ?? "refused" : "payment_provider_error", MAX_ID),
      ok ? null : clip(outcome.message, MAX_TEXT),
      providerData ? JSON.stringify(providerData) : null,
      outcome.latencyMs,
    ])
  }

  /** A call that must be made again failed this time: what happened, the row staying open. */
  async noteFailure(id: string, outcome: Exclude<SettledOutcome<unknown>, { kind: "ok" }> | { kind: "timeout"; latencyMs: number }): Promise<void> {
    await this.query(
      `UPDATE payment_collection_attempt
          SET outcome = $2, error_code = $3, error_message = $4, latency_ms = $5, answered_at = now()
        WHERE id = $1`,
      [
        id,
        outcome.kind,
        clip(
          outcome.kind === "refused" ? outcome.code ?? outcome.type ?? "refused" : outcome.kind === "timeout" ? "payment_provider_timeout" : "payment_provider_error",
          MAX_ID
        ),
        outcome.kind === "timeout" ? `no answer within ${this.options.provider_timeout_ms} ms` : clip(outcome.message, MAX_TEXT),
        outcome.latencyMs,
      ]
    )
  }

  /** The provider did not answer in time; the call may still answer (see `answer`). */
  async timedOut(id: string, latencyMs: number): Promise<void> {
    await this.query(
      `UPDATE payment_collection_attempt
          SET outcome = 'timeout', error_code = 'payment_provider_timeout',
              error_message = $2, latency_ms = $3
        WHERE id = $1 AND state = 'started'`,
      [id, `no answer within ${this.options.provider_timeout_ms} ms`, latencyMs]
    )
  }

  /**
   * Inside the request's transaction: calls to make once it has committed
   * (deleting removed sessions at their provider). They vanish with a
   * rollback; once committed they are done by the request or the reconciler.
   */
  async stage(tx: EntityManager, attempts: NewAttempt[], leaseMs: number): Promise<AttemptRow[]> {
    if (!attempts.length) {
      return []
    }
    const ids = attempts.map(() => entityId("pcatt"))
    await tx.query(
      `INSERT INTO payment_collection_attempt
         (id, payment_collection_id, payment_session_id, provider_id, operation, state,
          amount, currency_code, provider_data, request_id, idempotency_key, process, lease_until, created_at)
       SELECT a.id, a.collection_id, a.session_id, a.provider_id, a.operation, 'started',
              a.amount, a.currency_code, a.provider_data, $2, $3, $4,
              clock_timestamp() + make_interval(secs => $5::double precision / 1000),
              -- when it was staged, not when the transaction began (now())
              clock_timestamp()
         FROM jsonb_to_recordset($1::jsonb) AS a(id text, collection_id text, session_id text,
              provider_id text, operation text, amount int, currency_code text, provider_data jsonb)`,
      [
        JSON.stringify(
          attempts.map((a, i) => ({
            id: ids[i],
            collection_id: a.collectionId,
            session_id: a.sessionId ?? null,
            provider_id: a.providerId,
            operation: a.operation,
            amount: a.amount ?? null,
            currency_code: a.currencyCode ?? null,
            provider_data: a.providerData ?? null,
          }))
        ),
        clip(attempts[0].requestId, MAX_ID),
        clip(attempts[0].idempotencyKey, MAX_ID),
        PROCESS_ID,
        leaseMs,
      ]
    )
    return attempts.map((a, i) => startedRow(ids[i], a))
  }

  /**
   * A sweep of the provider's finder for what `row`'s call may have created,
   * as a row of its own (operation `find`, `uncertain`, the same window, or
   * the one `data` names — resend-sweep.ts): the reconciler settles it while
   * `row` itself is closed.
   */
  async addSweep(row: AttemptRow, data: Record<string, unknown> | null = null): Promise<void> {
    await this.query(
      `INSERT INTO payment_collection_attempt
         (id, payment_collection_id, payment_session_id, provider_id, operation, state, amount, currency_code,
          provider_data, request_id, process, lease_until, created_at)
       VALUES ($1, $2, NULL, $3, 'find', 'uncertain', $4, $5, $6, $7, $8, now(), $9)`,
      [
        entityId("pcatt"),
        row.payment_collection_id,
        row.provider_id,
        row.amount,
        row.currency_code,
        data && JSON.stringify(data),
        row.request_id,
        PROCESS_ID,
        row.created_at,
      ]
    )
  }

  /**
   * The provider objects a collection's open removals (deletes and cancels
   * still to be made) name: accounted for, so a finder's sweep leaves them to
   * those rows instead of removing them twice.
   */
  async objectsBeingRemoved(collectionId: string): Promise<Set<string>> {
    const rows: { id: string }[] = await this.query(
      `SELECT provider_data->>'id' AS id FROM payment_collection_attempt
        WHERE payment_collection_id = $1 AND state IN ${OPEN_STATES_SQL}
          AND operation IN ('delete', 'cancel') AND provider_data ? 'id'`,
      [collectionId]
    )
    return new Set(rows.map((r) => r.id))
  }

  /** Which of `ids` are calls still running (started, their lease not over). */
  async inFlight(ids: string[]): Promise<string[]> {
    const rows: { id: string }[] = await this.query(
      `SELECT id FROM payment_collection_attempt WHERE id = ANY($1) AND state = 'started' AND lease_until > now()`,
      [ids]
    )
    return rows.map((r) => r.id)
  }

  /** Closes an open row; false when it was no longer open. */
  async finish(id: string, state: ClosedState, resolvedBy: string, tx?: EntityManager): Promise<boolean> {
    const sql = `UPDATE payment_collection_attempt
                    SET state = $2, finished_at = now(), resolved_by = $3, next_attempt_at = NULL
                  WHERE id = $1 AND state IN ${OPEN_STATES_SQL}
                  RETURNING id`
    const params = [id, state, resolvedBy]
    const rows = tx ? updatedRows(await tx.query(sql, params)) : await this.query(sql, params)
    return rows.length > 0
  }

  /**
   * Marks an open row `needs_attention`, saying why. True the first time (the
   * caller announces it), false when it already was, or is no longer open.
   */
  async flagForAttention(id: string, reason: string): Promise<boolean> {
    const rows: { first: boolean }[] = await this.query(
      `UPDATE payment_collection_attempt a
          SET state = 'needs_attention', attention_at = COALESCE(b.attention_at, now()), error_message = $2
         FROM (SELECT id, attention_at FROM payment_collection_attempt WHERE id = $1 FOR UPDATE) b
        WHERE a.id = b.id AND a.state IN ${OPEN_STATES_SQL}
        RETURNING b.attention_at IS NULL AS first`,
      [id, clip(reason, MAX_TEXT)]
    )
    return rows[0]?.first ?? false
  }

  /**
   * A settling step failed or must wait: try again later, backing off from
   * the reconcile interval to at most an hour (never sooner than `notBefore`).
   * Whoever held the row stops working on it, so its lease ends now.
   */
  async retryLater(id: string, error?: string, notBefore?: Date): Promise<void> {
    await this.query(
      `UPDATE payment_collection_attempt
          SET recovery_attempts = recovery_attempts + 1, lease_until = now(),
              next_attempt_at = GREATEST($4::timestamptz,
                now() + make_interval(secs => LEAST(${MAX_BACKOFF_SECONDS}, $3::double precision / 1000 * 2 ^ LEAST(recovery_attempts, 16)))),
              error_message = COALESCE($2, error_message)
        WHERE id = $1`,
      [id, clip(error, MAX_TEXT), this.options.reconcile_interval_ms, notBefore ?? null]
    )
  }

  /** Open rows of one request, with their provider data (for the request to finish them). */
  async rows(ids: string[]): Promise<AttemptRow[]> {
    if (!ids.length) {
      return []
    }
    return await this.query(
      `SELECT ${ROW_COLUMNS} FROM payment_collection_attempt
        WHERE id = ANY($1) AND state IN ${OPEN_STATES_SQL}
        ORDER BY created_at, id`,
      [ids]
    )
  }

  /** Collections with open rows whose lease is over: what the reconciler looks at. */
  async collectionsToReconcile(limit: number): Promise<string[]> {
    const rows: { payment_collection_id: string }[] = await this.query(
      `SELECT payment_collection_id FROM payment_collection_attempt
        WHERE state IN ${OPEN_STATES_SQL} AND lease_until < now()
          AND (next_attempt_at IS NULL OR next_attempt_at <= now())
        GROUP BY payment_collection_id
        ORDER BY min(created_at)
        LIMIT $1`,
      [limit]
    )
    return rows.map((r) => r.payment_collection_id)
  }

  /**
   * Claims a collection's open rows whose lease is over, for `leaseMs` more:
   * two reconcilers never work on the same row at once.
   */
  async claimExpired(collectionId: string, leaseMs: number): Promise<AttemptRow[]> {
    return await this.query(
      `UPDATE payment_collection_attempt
          SET lease_until = now() + make_interval(secs => $2::double precision / 1000)
        WHERE payment_collection_id = $1 AND state IN ${OPEN_STATES_SQL} AND lease_until < now()
          AND (next_attempt_at IS NULL OR next_attempt_at <= now())
        RETURNING ${ROW_COLUMNS}`,
      [collectionId, leaseMs]
    )
  }

  /** Retention: finished rows older than `attempt_retention_days`, in batches. */
  async deleteFinished(batch = 1000): Promise<number> {
    const rows = await this.query(
      `DELETE FROM payment_collection_attempt
        WHERE id IN (SELECT id FROM payment_collection_attempt
                      WHERE state NOT IN ${OPEN_STATES_SQL}
                        AND created_at < now() - make_interval(days => $1)
                      LIMIT $2)
        RETURNING id`,
      [this.options.attempt_retention_days, batch]
    )
    return rows.length
  }

  async query<T = any>(sql: string, params: unknown[]): Promise<T[]> {
    const result = await this.pool.query(sql, params)
    return result.rows as T[]
  }
}
