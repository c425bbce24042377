import { EntityManager } from "typeorm"

/** The parts of a `pg` pool the journal uses (the host's `pg`, through TypeORM's driver). */
export type JournalPool = {
  query(sql: string, params: unknown[]): Promise<{ rows: unknown[] }>
  end(): Promise<void>
  on(event: "error", listener: (err: Error) => void): void
}

/** Connections of the journal's own pool, per backend process. */
const JOURNAL_POOL_SIZE = 4

/**
 * A small pool of the journal's own, on the same server with the same settings
 * as TypeORM's (and the same `pg`): a `started` row must be committed while the
 * request's transaction is open, and with every TypeORM connection held by a
 * request waiting on a provider, a journal write from TypeORM's pool could
 * never get one.
 */
export function createJournalPool(
  manager: EntityManager,
  timeoutMs: number,
  onError: (err: Error) => void
): JournalPool {
  const driver = manager.connection.driver as unknown as {
    postgres: { Pool: new (config: Record<string, unknown>) => JournalPool }
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
    connectionTimeoutMillis: timeoutMs,
    query_timeout: timeoutMs,
  })
  pool.on("error", onError)
  return pool
}

/** What the journal's statements need of a pool. */
export type JournalQueries = Pick<JournalPool, "query">

/** A pool made on first use (the database connection exists by then), and closed by `end`. */
export function lazyJournalPool(create: () => JournalPool): Pick<JournalPool, "query" | "end"> {
  let pool: JournalPool | undefined
  return {
    query: (sql, params) => (pool ??= create()).query(sql, params),
    end: async () => {
      const current = pool
      pool = undefined
      await current?.end()
    },
  }
}
