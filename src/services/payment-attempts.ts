import { hostname } from "os"
import { randomBytes } from "crypto"
import { MedusaError } from "medusa-core-utils"
import { EntityManager } from "typeorm"
import { entityId } from "../lib/entity-id"
import { SettledOutcome } from "../lib/provider-client"
import { PluginOptions, ResolvedPluginOptions, resolveOptions } from "../types/options"

/**
 * The attempt journal: one row per call the plugin makes to a payment
 * provider. A row's state says how far its effect got:
 *
 *   started    written and committed BEFORE the provider is called
 *   answered   the provider answered with an effect the database does not hold yet
 *   committed  the request's transaction committed the rows for it (same transaction)
 *   undone     the request did not commit and nothing of it remains at the provider
 *   adopted    the effect (an authorization) was recorded in the database after its request
 *   failed     the provider refused or crashed: no effect
 *   unknown    cannot be decided (a process died while an initiate call was in flight:
 *              the provider never told us the id of what it may have created)
 *
 * started/answered rows of requests that are over are finished by the request
 * itself or, when it could not (it died), by the reconciler.
 */
export type AttemptState =
  | "started"
  | "answered"
  | "committed"
  | "undone"
  | "adopted"
  | "failed"
  | "unknown"

export type AttemptOperation = "initiate" | "update" | "authorize" | "retrieve" | "status" | "delete" | "cancel"

export const OPEN_STATES: AttemptState[] = ["started", "answered"]

/** The parts of a `pg` pool the journal uses (the host's `pg`, through TypeORM's driver). */
type Pool = {
  query(sql: string, params: unknown[]): Promise<{ rows: unknown[] }>
  end(): Promise<void>
  on(event: "error", listener: (err: Error) => void): void
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

type InjectedDependencies = {
  manager: EntityManager
  logger: { warn: (m: string) => void; error: (m: string) => void }
}

/** The columns an admin may read; provider_data stays server-side. */
const VIEW_COLUMNS = `id, payment_session_id AS session_id, provider_id, operation, state, outcome,
  error_code, error_message, amount, latency_ms, request_id, created_at`

const ROW_COLUMNS = `id, payment_collection_id, payment_session_id, provider_id, operation, state, outcome,
  amount, currency_code, provider_data, request_id, process, recovery_attempts`

/** Connections of the journal's own pool, per backend process. */
const JOURNAL_POOL_SIZE = 4
const MAX_TEXT = 1000
const MAX_ID = 255

/** This process, as journal rows name their owner. */
export const PROCESS_ID = `${hostname()}:${process.pid}:${randomBytes(3).toString("hex")}`

function clip(value: string | null | undefined, max: number): string | null {
  if (value === null || value === undefined) {
    return null
  }
  // PostgreSQL text cannot hold NUL.
  const clean = value.replace(/\u0000/g, "")
  return clean.length > max ? clean.slice(0, max) : clean
}

/**
 * The journal's writes go through a small pool of its own, not TypeORM's: a
 * `started` row must be committed while the request's transaction is open, and
 * with every TypeORM connection held by a request waiting on a provider, a
 * journal write from the same pool could never get one.
 */
export default class PaymentAttemptsService {
  /** One pool per process (awilix's Lifetime.SINGLETON). */
  static LIFE_TIME = "SINGLETON"

  protected readonly manager_: EntityManager
  protected readonly logger_: InjectedDependencies["logger"]
  protected readonly options_: ResolvedPluginOptions
  private pool_: Pool | undefined

  constructor(container: InjectedDependencies, options?: PluginOptions) {
    this.manager_ = container.manager
    this.logger_ = container.logger
    this.options_ = resolveOptions(options)
  }

  /** How long a started call belongs to its request before the reconciler may finish it. */
  get leaseMs(): number {
    return 2 * this.options_.provider_timeout_ms
  }

  /**
   * Records, committed, that a provider call is about to be made. If this
   * throws, the provider must not be called.
   */
  async start(attempt: NewAttempt): Promise<string> {
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
    return id
  }

  /**
   * Records what the provider answered, the moment it answers: `answered`
   * with the data an undo needs, or `failed` when there was no effect.
   * `effect` false: an answer with nothing to finish (a read).
   */
  async answer(
    id: string,
    outcome: SettledOutcome<unknown>,
    providerData?: Record<string, unknown> | null
  ): Promise<void> {
    const ok = outcome.kind === "ok"
    await this.query(`SELECT pcp_answer_attempt_v1($1, $2, $3, $4, $5, $6, $7)`, [
      id,
      ok ? "answered" : "failed",
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
        outcome.kind === "timeout" ? `no answer within ${this.options_.provider_timeout_ms} ms` : clip(outcome.message, MAX_TEXT),
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
      [id, `no answer within ${this.options_.provider_timeout_ms} ms`, latencyMs]
    )
  }

  /**
   * Inside the request's transaction: its rows are committed together with
   * what they describe, or not at all.
   */
  async markCommitted(tx: EntityManager, ids: string[]): Promise<void> {
    if (!ids.length) {
      return
    }
    await tx.query(
      `UPDATE payment_collection_attempt
          SET state = 'committed', finished_at = now(), resolved_by = 'request'
        WHERE id = ANY($1) AND state IN ('started', 'answered')`,
      [ids]
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
    return attempts.map((a, i) => ({
      id: ids[i],
      payment_collection_id: a.collectionId,
      payment_session_id: a.sessionId ?? null,
      provider_id: a.providerId,
      operation: a.operation,
      state: "started",
      outcome: null,
      amount: a.amount ?? null,
      currency_code: a.currencyCode ?? null,
      provider_data: a.providerData ?? null,
      request_id: a.requestId ?? null,
      process: PROCESS_ID,
      recovery_attempts: 0,
    }))
  }

  /** Moves an open row to its final state; false when it was no longer open. */
  async finish(
    id: string,
    state: Exclude<AttemptState, "started" | "answered">,
    resolvedBy: string,
    tx?: EntityManager
  ): Promise<boolean> {
    const sql = `UPDATE payment_collection_attempt
                    SET state = $2, finished_at = now(), resolved_by = $3, next_attempt_at = NULL
                  WHERE id = $1 AND state IN ('started', 'answered', 'unknown')
                  RETURNING id`
    const params = [id, state, resolvedBy]
    const rows = tx ? updatedRows(await tx.query(sql, params)) : await this.query(sql, params)
    return rows.length > 0
  }

  /**
   * Marks a call whose answer the journal never got `unknown` — only while it
   * still has none: false when the answer arrived meanwhile (then it is
   * finished by what it answered).
   */
  async markUnanswered(id: string, resolvedBy: string): Promise<boolean> {
    const rows = await this.query(
      `UPDATE payment_collection_attempt
          SET state = 'unknown', finished_at = now(), resolved_by = $2, next_attempt_at = NULL
        WHERE id = $1 AND state = 'started'
        RETURNING id`,
      [id, resolvedBy]
    )
    return rows.length > 0
  }

  /**
   * A finishing step failed: try again later, backing off (at most an hour).
   * Whoever held the row stops working on it, so its lease ends now.
   */
  async retryLater(id: string, error?: string): Promise<void> {
    await this.query(
      `UPDATE payment_collection_attempt
          SET recovery_attempts = recovery_attempts + 1, lease_until = now(),
              next_attempt_at = now() + make_interval(secs => LEAST(3600, $3::double precision / 1000 * 2 ^ LEAST(recovery_attempts, 12))),
              error_message = COALESCE($2, error_message)
        WHERE id = $1`,
      [id, clip(error, MAX_TEXT), this.options_.reconcile_interval_ms]
    )
  }

  /** Open rows of one request, with their provider data (for the request to finish them). */
  async rows(ids: string[]): Promise<AttemptRow[]> {
    if (!ids.length) {
      return []
    }
    return await this.query(
      `SELECT ${ROW_COLUMNS} FROM payment_collection_attempt
        WHERE id = ANY($1) AND state IN ('started', 'answered')
        ORDER BY created_at, id`,
      [ids]
    )
  }

  /** Collections with open rows whose lease is over: what the reconciler looks at. */
  async collectionsToReconcile(limit: number): Promise<string[]> {
    const rows: { payment_collection_id: string }[] = await this.query(
      `SELECT payment_collection_id FROM payment_collection_attempt
        WHERE state IN ('started', 'answered') AND lease_until < now()
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
        WHERE payment_collection_id = $1 AND state IN ('started', 'answered') AND lease_until < now()
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
                      WHERE state NOT IN ('started', 'answered')
                        AND created_at < now() - make_interval(days => $1)
                      LIMIT $2)
        RETURNING id`,
      [this.options_.attempt_retention_days, batch]
    )
    return rows.length
  }

  async listForCollection(
    collectionId: string,
    page: { limit: number; offset: number }
  ): Promise<AttemptPage> {
    const [row]: { exists: boolean; count: number; attempts: AttemptView[] | null }[] =
      await this.manager_.query(
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

  /** Closes the journal's pool (backend shutdown). */
  async close(): Promise<void> {
    const pool = this.pool_
    this.pool_ = undefined
    await pool?.end()
  }

  async query<T = any>(sql: string, params: unknown[]): Promise<T[]> {
    const result = await this.pool().query(sql, params)
    return result.rows as T[]
  }

  private pool(): Pool {
    if (!this.pool_) {
      this.pool_ = this.createPool()
    }
    return this.pool_
  }

  /** Same server and settings as TypeORM's pool (and the same `pg`), but its own connections. */
  private createPool(): Pool {
    const driver = this.manager_.connection.driver as unknown as {
      postgres: { Pool: new (config: Record<string, unknown>) => Pool }
      options: {
        url?: string
        host?: string
        port?: number
        username?: string
        password?: string
        database?: string
        ssl?: unknown
        extra?: Record<string, unknown>
      }
    }
    const { options } = driver
    const pool = new driver.postgres.Pool({
      connectionString: options.url,
      host: options.host,
      user: options.username,
      password: options.password,
      database: options.database,
      port: options.port,
      ssl: options.ssl,
      ...(options.extra ?? {}),
      max: JOURNAL_POOL_SIZE,
      // Never the reason a process stays up, never a request stuck on a dead server.
      allowExitOnIdle: true,
      idleTimeoutMillis: 30_000,
      connectionTimeoutMillis: this.options_.lock_timeout_ms,
      query_timeout: this.options_.lock_timeout_ms,
    })
    pool.on("error", (err: Error) =>
      this.logger_.warn(`medusa-plugin-payment-collections: attempt journal connection failed: ${err.message}`)
    )
    return pool
  }
}

/** UPDATE ... RETURNING answers [rows, count] through TypeORM's postgres driver. */
function updatedRows(result: unknown): unknown[] {
  const rows = result as unknown[]
  return (Array.isArray(rows[0]) ? rows[0] : rows) as unknown[]
}
