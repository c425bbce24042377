import crypto from "crypto"
import fs from "fs"
import { Client } from "pg"
import { ExtraBackend, startExtraBackend, stopExtraBackends } from "./helpers/backend"
import { Api, createApi } from "./helpers/http"
import { createPaymentCollection, createRegion, db } from "./helpers/factories"
import { psp } from "./helpers/fake-psp"
import { testEnv } from "./helpers/env"
import { waitForSettledJournal } from "./helpers/journal"
import { base, describeAnswer, linkedSessions, sleep, waitFor } from "./helpers/payments"
import { orphanSessionsOf } from "./helpers/collection-state"

// A lock that cannot be lost unnoticed. The plugin holds a collection's row lock in a transaction
// that sits idle while a provider answers. A server whose idle_in_transaction_session_timeout is
// shorter than that call (here: the backends' own database role, ALTER ROLE ... SET 2 s, and a
// provider taking 3 s) would end the transaction — and the lock — mid-call, and another process
// would initiate the same collection at the same time. Each locked transaction therefore sets its
// own timeout (transaction-local: PgBouncer's transaction mode keeps working) above the longest call
// it can make. And when the transaction is lost all the same (here: pg_terminate_backend on the
// connection that is `idle in transaction` while its provider call is delayed), the request notices
// before its next provider call, makes no more of them, answers 503 and settles what it did.
//
// The "pgbouncer" project runs this file too, with PgBouncer (transaction mode) between the
// backends and PostgreSQL: the role's setting then applies to PgBouncer's server connections, and
// terminating the server connection makes PgBouncer close the backend's client connection — the
// backend sees its connection end in both projects, and every case asserts the same outcome.

// The provider takes 3 s; a call may take up to 4 s, and a request waits up to 5 s for the lock
// (the first request holds it for the 3 s call). The plugin's own timeout for its transactions:
// 4 + 2 × 5 + 5 = 19 s.
const OPTIONS = { provider_timeout_ms: 4000, lock_timeout_ms: 5000, reconcile_interval_ms: 500, finder_settle_ms: 1000 }
const PROVIDER_MS = 3000
const ROLE_IDLE_TIMEOUT = "2s"
/** The plugin's default options: provider_timeout_ms 30 s + 2 × lock_timeout_ms 10 s + 5 s (README). */
const DEFAULT_TRANSACTION_IDLE_S = 55

const viaPgbouncer = () => testEnv().pooler === "pgbouncer"

function urlAs(url: string, user: string, password: string, database?: string): string {
  const parsed = new URL(url)
  parsed.username = encodeURIComponent(user)
  parsed.password = encodeURIComponent(password)
  if (database !== undefined) parsed.pathname = `/${encodeURIComponent(database)}`
  return parsed.toString()
}

/** PgBouncer's admin console (database "pgbouncer"), as the harness's admin user. */
async function pgbouncerConsole<T>(fn: (client: Client) => Promise<T>): Promise<T> {
  const url = new URL(testEnv().backendDatabaseUrl)
  url.pathname = "/pgbouncer"
  const client = new Client({ connectionString: url.toString() })
  await client.connect()
  try {
    return await fn(client)
  } finally {
    await client.end()
  }
}

async function pgbouncerSetting(key: string): Promise<string> {
  const { rows } = await pgbouncerConsole((client) => client.query("SHOW CONFIG"))
  const row = rows.find((r: { key: string }) => r.key === key)
  if (!row) throw new Error(`PgBouncer's SHOW CONFIG has no ${key}`)
  return row.value
}

/**
 * A login role of the backends' own, with `ALTER ROLE ... SET idle_in_transaction_session_timeout`,
 * allowed what Medusa needs in the run's database; behind PgBouncer also listed in its auth_file
 * (reloaded), as a DBA adds a role there. Returns its URL (the way the backends reach the database)
 * and how to remove it again.
 */
async function createIdleTimeoutRole(): Promise<{ name: string; url: string; directUrl: string; drop: () => Promise<void> }> {
  const name = `pcp_idle_${crypto.randomBytes(4).toString("hex")}`
  const password = crypto.randomBytes(12).toString("hex")
  const { databaseName, databaseUrl, backendDatabaseUrl } = testEnv()
  await db.query(`CREATE ROLE ${name} LOGIN PASSWORD '${password}'`)
  await db.query(`ALTER ROLE ${name} SET idle_in_transaction_session_timeout = '${ROLE_IDLE_TIMEOUT}'`)
  await db.query(`GRANT CONNECT ON DATABASE "${databaseName}" TO ${name}`)
  await db.query(`GRANT USAGE ON SCHEMA public TO ${name}`)
  await db.query(`GRANT ALL PRIVILEGES ON ALL TABLES IN SCHEMA public TO ${name}`)
  await db.query(`GRANT ALL PRIVILEGES ON ALL SEQUENCES IN SCHEMA public TO ${name}`)
  let authFile: string | undefined
  let listed = ""
  if (viaPgbouncer()) {
    authFile = await pgbouncerSetting("auth_file")
    listed = `"${name}" "${password}"\n`
    fs.appendFileSync(authFile, listed)
    await pgbouncerConsole((client) => client.query("RELOAD"))
  }
  return {
    name,
    url: urlAs(backendDatabaseUrl, name, password),
    directUrl: urlAs(databaseUrl, name, password),
    drop: async () => {
      if (authFile && fs.existsSync(authFile)) {
        fs.writeFileSync(authFile, fs.readFileSync(authFile, "utf8").replace(listed, ""))
        await pgbouncerConsole((client) => client.query("RELOAD"))
      }
      await db.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1`, [name])
      await db.query(`DROP OWNED BY ${name}`)
      await db.query(`DROP ROLE ${name}`)
    },
  }
}

/** The role's connections that sit `idle in transaction`, idle for at least `forMs`. */
async function idleInTransaction(role: string, forMs: number): Promise<number[]> {
  const { rows } = await db.query(
    `SELECT pid FROM pg_stat_activity
      WHERE usename = $1 AND state = 'idle in transaction' AND state_change < now() - make_interval(secs => $2)`,
    [role, forMs / 1000]
  )
  return rows.map((r) => r.pid)
}

describe(`a lock that cannot be lost unnoticed (${viaPgbouncer() ? "behind PgBouncer, transaction mode" : "PostgreSQL directly"})`, () => {
  let role: Awaited<ReturnType<typeof createIdleTimeoutRole>>
  let backends: ExtraBackend[] = []
  let shops: Api[] = []
  let region: any
  const seen: Record<string, unknown> = {}

  beforeAll(async () => {
    role = await createIdleTimeoutRole()
    const env = { PAYMENT_COLLECTIONS_OPTIONS: JSON.stringify(OPTIONS) }
    backends = await Promise.all([
      startExtraBackend({ env, databaseUrl: role.url }),
      startExtraBackend({ env, databaseUrl: role.url }),
    ])
    shops = backends.map((b) => createApi(b.url))
    region = await createRegion({ providers: ["manual", "test-pay", "test-fields"] })
  }, 240_000)

  beforeEach(() => psp.reset())

  afterAll(async () => {
    await psp.reset()
    await stopExtraBackends()
    await role?.drop()
    await db.end()
    console.log(`lock loss (${viaPgbouncer() ? "pgbouncer" : "direct"}): ${JSON.stringify(seen)}`)
  }, 60_000)

  it(`the backends' role ends a transaction left idle for ${ROLE_IDLE_TIMEOUT} (what the plugin's transactions must survive)`, async () => {
    const client = new Client({ connectionString: role.url })
    client.on("error", () => undefined)
    await client.connect()
    try {
      expect((await client.query("SHOW idle_in_transaction_session_timeout")).rows[0].idle_in_transaction_session_timeout).toBe(
        ROLE_IDLE_TIMEOUT
      )
      await client.query("BEGIN")
      await client.query("SELECT 1")
      await sleep(2500)
      const after = await client.query("SELECT 1").then(
        () => "still open",
        (err: Error) => err.message
      )
      seen.idleTransaction = after
      expect(after).not.toBe("still open")
    } finally {
      await client.end().catch(() => undefined)
    }
  })

  // Only behind PgBouncer is there a pooler's own idle-transaction timeout to check; directly, the
  // role's (asserted above) is the only one, and the next two cases show the plugin's transactions outlive it.
  if (viaPgbouncer()) {
    it("PgBouncer's idle_transaction_timeout is above what the plugin lets a locked transaction sit idle (README)", async () => {
      const seconds = Number(await pgbouncerSetting("idle_transaction_timeout"))
      seen.pgbouncerIdleTransactionTimeout = seconds
      expect(seconds).toBeGreaterThan(DEFAULT_TRANSACTION_IDLE_S)
      expect(seconds * 1000).toBeGreaterThan(OPTIONS.provider_timeout_ms + 2 * OPTIONS.lock_timeout_ms + 5000)
    })
  }

  it(
    `two backends create a session on one collection at once, the provider taking ${PROVIDER_MS / 1000} s → ` +
      "one initiate at the provider, one session, both 200",
    async () => {
      const collection = await createPaymentCollection({ regionId: region.id, amount: 1000 })
      await psp.behaviour({ initiatePayment: { delayMs: PROVIDER_MS } })
      const t0 = Date.now()

      const answers = await Promise.all(
        shops.map((shop) =>
          shop
            .post(`${base(collection.id)}/sessions`, { provider_id: "test-pay" }, { timeoutMs: 30_000 })
            .then((res) => ({ res, at: Date.now() - t0 }))
        )
      )
      seen.twoCreates = answers.map((a) => ({ answer: describeAnswer(a.res), at: a.at }))

      expect(answers.map((a) => describeAnswer(a.res))).toEqual(["200", "200"])
      const [one, two] = answers.map((a) => a.res.body.payment_collection.payment_sessions)
      expect(one).toHaveLength(1)
      expect(two).toEqual(one)
      const state = await psp.state()
      expect(state.calls.initiatePayment).toBe(1)
      expect(state.maxInflight.initiatePayment).toBe(1)
      const rows = await linkedSessions(collection.id)
      expect(rows.map((r) => r.id)).toEqual([one[0].id])
      expect(state.live.map((i) => i.id)).toEqual([rows[0].data.id])
      expect(await orphanSessionsOf(collection.id)).toEqual([])
    },
    60_000
  )

  it(
    "the request's transaction killed while its first provider call is delayed, in a batch creating two sessions → " +
      "the second initiate is never made, 503, and the first intent is deleted: the provider holds what the database names",
    async () => {
      const collection = await createPaymentCollection({ regionId: region.id, amount: 1000 })
      await psp.behaviour({ initiatePayment: { delayMs: 2500, provider: "test-pay" } })
      const t0 = Date.now()

      const pending = shops[0]
        .post(`${base(collection.id)}/sessions/batch`, {
          sessions: [
            { provider_id: "test-pay", amount: 600 },
            { provider_id: "test-fields", amount: 400 },
          ],
        })
        .then((res) => ({ res, at: Date.now() - t0 }))
      await waitFor("the first initiate to be in flight", async () => (await psp.state()).inflight.initiatePayment === 1)
      // The one connection of the role idle in a transaction for a while: the request's, waiting for the provider.
      const [pid, ...others] = await waitFor<number[] | undefined>(
        "the request's transaction to sit idle",
        async () => {
          const pids = await idleInTransaction(role.name, 300)
          return pids.length ? pids : undefined
        },
        { timeoutMs: 2000, intervalMs: 50 }
      ).then((pids) => pids!)
      expect(others).toEqual([])
      const { rows } = await db.query(`SELECT pg_terminate_backend($1) AS terminated`, [pid])
      expect(rows[0].terminated).toBe(true)
      const killedAt = Date.now() - t0
      const { res, at } = await pending
      seen.terminated = { killedAt, answeredAt: at, answer: describeAnswer(res), code: res.body?.code }

      expect({ status: res.status, type: res.body?.type, code: res.body?.code }).toEqual({
        status: 503,
        type: "database_error",
        code: "database_unavailable",
      })
      expect(res.headers["x-payment-collections-plugin"]).toMatch(/^medusa-plugin-payment-collections@/)
      const initiates = await psp.history({ method: "initiatePayment" })
      expect(initiates.map((call) => call.provider)).toEqual(["test-pay"])
      expect((await psp.state()).callsByProvider["test-fields"]?.initiatePayment ?? 0).toBe(0)

      // What it did is settled: the intent it created is deleted, the database names nothing.
      await waitForSettledJournal(collection.id, 20_000)
      expect(await linkedSessions(collection.id)).toEqual([])
      expect(await psp.liveIntents(collection.id)).toEqual([])
      expect((await psp.intent(initiates[0].intentId!)).status).toBe("canceled")
      expect(await orphanSessionsOf(collection.id)).toEqual([])

      // The collection is usable again at once.
      await psp.behaviour({ initiatePayment: null })
      const again = await shops[1].post(`${base(collection.id)}/sessions/batch`, {
        sessions: [
          { provider_id: "test-pay", amount: 600 },
          { provider_id: "test-fields", amount: 400 },
        ],
      })
      expect(describeAnswer(again)).toBe("200")
      const named = (await linkedSessions(collection.id)).map((s) => s.data.id).sort()
      expect((await psp.liveIntents(collection.id)).map((i) => i.id).sort()).toEqual(named)
    },
    60_000
  )
})
