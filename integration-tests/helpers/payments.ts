import { Client } from "pg"
import { testEnv } from "./env"
import { db } from "./factories"
import { HttpResponse } from "./http"

// Small, generic helpers for specs that check the database after concurrent or
// failing requests (the provider's side: helpers/fake-psp.ts).

// ------------------------------------------------------------ answers

/** A store path of the group: `/store/payment-collections/<id>`. */
export const base = (id: string) => `/store/payment-collections/${id}`

/** "200", or status, error type and message: a failure shows what came back. */
export function describeAnswer(r: HttpResponse): string {
  return r.status === 200 ? "200" : `${r.status} ${r.body?.type}: ${r.body?.message}`
}

/** describeAnswer of each answer, for `toEqual(Array(n).fill("200"))`. */
export function statuses(answers: HttpResponse[]): string[] {
  return answers.map(describeAnswer)
}

/** The ids of the sessions a `{ payment_collection }` answer names, sorted. */
export const sessionIds = (res: HttpResponse): string[] =>
  (res.body.payment_collection.payment_sessions as any[]).map((s) => s.id).sort()

// ------------------------------------------------------------ database rows

/** The payment_session rows linked to a collection (payment_collection_sessions), oldest first. */
export async function linkedSessions(collectionId: string): Promise<any[]> {
  const { rows } = await db.query(
    `SELECT ps.* FROM payment_session ps
       JOIN payment_collection_sessions pcs ON pcs.payment_session_id = ps.id
      WHERE pcs.payment_collection_id = $1
      ORDER BY ps.created_at, ps.id`,
    [collectionId]
  )
  return rows
}

/** Whether a session's row, and its link to a collection, still exist. */
export async function sessionExists(sessionId: string): Promise<{ row: boolean; link: boolean }> {
  const session = await db.query(`SELECT 1 FROM payment_session WHERE id = $1`, [sessionId])
  const link = await db.query(`SELECT 1 FROM payment_collection_sessions WHERE payment_session_id = $1`, [sessionId])
  return { row: session.rowCount === 1, link: link.rowCount === 1 }
}

/** The payment rows linked to a collection (payment_collection_payments). */
export async function linkedPayments(collectionId: string): Promise<any[]> {
  const { rows } = await db.query(
    `SELECT p.* FROM payment p
       JOIN payment_collection_payments pcp ON pcp.payment_id = p.id
      WHERE pcp.payment_collection_id = $1
      ORDER BY p.created_at, p.id`,
    [collectionId]
  )
  return rows
}

/**
 * payment_session rows of no cart that no payment collection links: what a
 * half-done collection write leaves behind. Looks at the whole (per-run) database.
 */
export async function orphanSessions(): Promise<any[]> {
  const { rows } = await db.query(
    `SELECT ps.* FROM payment_session ps
      WHERE ps.cart_id IS NULL
        AND NOT EXISTS (SELECT 1 FROM payment_collection_sessions pcs WHERE pcs.payment_session_id = ps.id)`
  )
  return rows
}

export async function collectionRow(collectionId: string): Promise<any> {
  const { rows } = await db.query(`SELECT * FROM payment_collection WHERE id = $1`, [collectionId])
  return rows[0]
}

/**
 * Makes writes to `table` fail while installed: a BEFORE `event` trigger that
 * raises for rows matching `condition` (SQL over NEW). Returns the function
 * that drops it again.
 */
export async function installFailingTrigger(
  table: string,
  event: "INSERT" | "UPDATE" | "INSERT OR UPDATE",
  condition: string
): Promise<() => Promise<void>> {
  const name = `pcp_test_fail_${Math.random().toString(36).slice(2, 10)}`
  await db.query(
    `CREATE FUNCTION ${name}() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN
       IF ${condition} THEN
         RAISE EXCEPTION 'test trigger % refuses this write', TG_NAME;
       END IF;
       RETURN NEW;
     END $$`
  )
  await db.query(`CREATE TRIGGER ${name} BEFORE ${event} ON ${table} FOR EACH ROW EXECUTE FUNCTION ${name}()`)
  return async () => {
    await db.query(`DROP TRIGGER IF EXISTS ${name} ON ${table}`)
    await db.query(`DROP FUNCTION IF EXISTS ${name}()`)
  }
}

export interface HeldLock {
  release(): Promise<void>
}

/**
 * Opens its own connection, begins a transaction and runs `lockSql` (e.g. a
 * SELECT ... FOR UPDATE) in it; the locks stay held until release() rolls back.
 */
export async function holdLock(lockSql: string, params: unknown[] = []): Promise<HeldLock> {
  const client = new Client({ connectionString: testEnv().databaseUrl })
  await client.connect()
  try {
    await client.query("BEGIN")
    await client.query(lockSql, params)
  } catch (err) {
    await client.end()
    throw err
  }
  let released = false
  return {
    release: async () => {
      if (released) return
      released = true
      try {
        await client.query("ROLLBACK")
      } finally {
        await client.end()
      }
    },
  }
}

// ------------------------------------------------------------------ timing

/** Runs fn(0..n-1) at once; resolves with all results in index order. */
export function parallel<T>(n: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => fn(i)))
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Polls `probe` until it returns a truthy value or `timeoutMs` passes (then throws `what`). */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T>,
  { timeoutMs = 15_000, intervalMs = 50 }: { timeoutMs?: number; intervalMs?: number } = {}
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(intervalMs)
  }
}

/** Sends the request and measures when its answer arrived (ms since `origin`). */
export async function timed<T>(
  origin: number,
  request: () => Promise<HttpResponse<T>>
): Promise<{ res: HttpResponse<T>; endedAt: number }> {
  const res = await request()
  return { res, endedAt: Date.now() - origin }
}

/**
 * Sends a request again, as a well-behaved client does, while it answers 409
 * with Retry-After (a call on the session is not settled yet), waiting what
 * the header says; at most `times` tries. Answers the last answer.
 */
export async function retryWhileBusy(send: () => Promise<HttpResponse>, times = 5): Promise<HttpResponse> {
  let res = await send()
  for (let i = 1; i < times && res.status === 409 && res.headers["retry-after"] !== undefined; i++) {
    await sleep(Number(res.headers["retry-after"]) * 1000)
    res = await send()
  }
  return res
}
