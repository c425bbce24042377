import crypto from "crypto"
import fs from "fs"
import path from "path"
import { spawn } from "child_process"
import { Client } from "pg"
import { testEnv } from "./helpers/env"

// The plugin's migrations on a backend that already has data, with Medusa's own
// CLI: `medusa migrations run` adds the plugin's tables and touches nothing else,
// running it again changes nothing, `medusa migrations revert` takes what the
// newest migration made out again (while the plugin's newest migration is the
// last one executed), and `run` brings it back.
//
// Each test works on this file's own database, migrated in beforeAll the way a
// backend existed before the plugin was installed: core migrations only
// (HOST_WITHOUT_PLUGIN=1), then some data.

interface MedusaHost {
  runMigrations(options: { hostDir: string; databaseUrl: string; env?: Record<string, string> }): Promise<void>
  childEnv(databaseUrl: string, env?: Record<string, string>): NodeJS.ProcessEnv
  REPO_ROOT: string
  MEDUSA_CLI: string
}
interface PostgresLib {
  createDatabase(baseUrl: string, name: string): Promise<void>
  dropDatabase(baseUrl: string, name: string): Promise<void>
  databaseUrl(baseUrl: string, name: string): string
}
// Plain CommonJS shared with the scripts; typed here instead of allowJs.
// eslint-disable-next-line @typescript-eslint/no-var-requires
const host: MedusaHost = require(path.resolve(__dirname, "../scripts/lib/medusa-host.js"))
// eslint-disable-next-line @typescript-eslint/no-var-requires
const postgres: PostgresLib = require(path.resolve(__dirname, "../scripts/lib/postgres.js"))

/** The admin switch's table, created by the plugin's first migration. */
const TABLE = "payment_collection_provider_setting"
/** The attempt journal's table, created by the plugin's second migration. */
const JOURNAL_TABLE = "payment_collection_attempt"
/** The status sync's table, created by an earlier migration. */
const STATUS_CHECK_TABLE = "payment_collection_status_check"
/** What CreatePaymentCollectionReconcilerIndexes (the migration before the newest) creates: indexes on core's tables. */
const RECONCILER_INDEXES = ["IDX_pcp_idempotency_key_created_at", "IDX_pcp_payment_session_waiting"]
const WITHOUT_PLUGIN = { HOST_WITHOUT_PLUGIN: "1" }
const CLI_TIMEOUT_MS = 120_000

/** The `name` of every migration the plugin ships (dist/migrations), oldest first. */
function pluginMigrationNames(): string[] {
  const dir = path.join(host.REPO_ROOT, "dist", "migrations")
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".js"))
    .sort()
    .flatMap((f) => Object.values(require(path.join(dir, f)) as Record<string, new () => { name: string }>))
    .map((Migration) => new Migration().name)
}

/** `medusa <args>` in the host fixture on `databaseUrl`; resolves with its exit code and output. */
function medusaCli(args: string[], databaseUrl: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    // The repository's environment for Medusa processes (private config home, no NODE_ENV=test).
    const env = host.childEnv(databaseUrl)
    const child = spawn(host.MEDUSA_CLI, args, { cwd: testEnv().hostDir, env, stdio: ["ignore", "pipe", "pipe"] })
    let output = ""
    child.stdout.on("data", (c: Buffer) => (output += c.toString("utf8")))
    child.stderr.on("data", (c: Buffer) => (output += c.toString("utf8")))
    const timer = setTimeout(() => child.kill("SIGKILL"), CLI_TIMEOUT_MS)
    child.on("error", reject)
    child.on("close", (code) => {
      clearTimeout(timer)
      resolve({ code, output })
    })
  })
}

describe("the plugin's migrations (medusa migrations run / revert)", () => {
  const dbName = `pcp_migrations_${Date.now()}_${crypto.randomBytes(3).toString("hex")}`
  let dbUrl: string
  let client: Client
  const runWithPlugin = () => host.runMigrations({ hostDir: testEnv().hostDir, databaseUrl: dbUrl })

  async function tableExists(table = TABLE): Promise<boolean> {
    const { rows } = await client.query(`SELECT to_regclass($1) IS NOT NULL AS present`, [`public.${table}`])
    return rows[0].present
  }

  /** The reconciler's indexes that exist. */
  async function reconcilerIndexes(): Promise<string[]> {
    const { rows } = await client.query(
      `SELECT indexname FROM pg_indexes WHERE schemaname = 'public' AND indexname = ANY($1) ORDER BY indexname`,
      [RECONCILER_INDEXES]
    )
    return rows.map((r) => r.indexname)
  }

  /** The plugin's SQL functions (migration CreatePaymentCollectionFunctions). */
  async function pluginFunctions(): Promise<string[]> {
    const { rows } = await client.query(
      `SELECT proname FROM pg_proc WHERE proname LIKE 'pcp\\_%' AND pronamespace = 'public'::regnamespace ORDER BY proname`
    )
    return rows.map((r) => r.proname)
  }

  /** The language of pcp_commit_attempts_v1: the newest migration (CreatePaymentCollectionCommitAttemptsPlpgsql) makes it PL/pgSQL. */
  async function commitAttemptsLanguage(): Promise<string | null> {
    const { rows } = await client.query(
      `SELECT l.lanname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
        WHERE p.proname = 'pcp_commit_attempts_v1' AND p.pronamespace = 'public'::regnamespace`
    )
    return rows[0]?.lanname ?? null
  }

  async function executedMigrations(): Promise<{ id: number; timestamp: string; name: string }[]> {
    const { rows } = await client.query(`SELECT id, timestamp::text, name FROM migrations ORDER BY id`)
    return rows
  }

  /** The rows the backend had before the plugin came: they must survive every step. */
  async function existingData() {
    const q = async (sql: string) => (await client.query(sql)).rows
    return {
      providers: await q(`SELECT * FROM payment_provider ORDER BY id`),
      regions: await q(`SELECT * FROM region WHERE id = 'reg_pcp_migrations' ORDER BY id`),
      regionProviders: await q(`SELECT * FROM region_payment_providers ORDER BY region_id, provider_id`),
      collections: await q(`SELECT * FROM payment_collection ORDER BY id`),
      sessions: await q(`SELECT * FROM payment_session ORDER BY id`),
      links: await q(`SELECT * FROM payment_collection_sessions ORDER BY payment_session_id`),
    }
  }

  let dataBefore: Awaited<ReturnType<typeof existingData>>
  let coreMigrations: { id: number; timestamp: string; name: string }[]

  beforeAll(async () => {
    const { baseUrl } = testEnv()
    await postgres.createDatabase(baseUrl, dbName)
    dbUrl = postgres.databaseUrl(baseUrl, dbName)
    await host.runMigrations({ hostDir: testEnv().hostDir, databaseUrl: dbUrl, env: WITHOUT_PLUGIN })
    client = new Client({ connectionString: dbUrl })
    await client.connect()

    await client.query(`INSERT INTO payment_provider (id, is_installed) VALUES ('manual', true)`)
    await client.query(
      `INSERT INTO region (id, name, currency_code, tax_rate) VALUES ('reg_pcp_migrations', 'Before the plugin', 'usd', 0)`
    )
    await client.query(`INSERT INTO region_payment_providers (region_id, provider_id) VALUES ('reg_pcp_migrations', 'manual')`)
    await client.query(
      `INSERT INTO payment_collection (id, type, status, amount, authorized_amount, region_id, currency_code, created_by)
       VALUES ('paycol_pcp_migrations', 'order_edit', 'authorized', 1500, 1500, 'reg_pcp_migrations', 'usd', 'usr_before')`
    )
    await client.query(
      `INSERT INTO payment_session (id, provider_id, status, data, amount, is_initiated, payment_authorized_at)
       VALUES ('ps_pcp_migrations', 'manual', 'authorized', '{"status":"authorized"}', 1500, true, now())`
    )
    await client.query(
      `INSERT INTO payment_collection_sessions (payment_collection_id, payment_session_id)
       VALUES ('paycol_pcp_migrations', 'ps_pcp_migrations')`
    )
    dataBefore = await existingData()
    coreMigrations = await executedMigrations()
  }, 180_000)

  afterAll(async () => {
    await client?.end()
    await postgres.dropDatabase(testEnv().baseUrl, dbName)
  })

  it("starts from a backend migrated without the plugin: core migrations only, no plugin table", async () => {
    expect(coreMigrations.length).toBeGreaterThan(50)
    const names = coreMigrations.map((m) => m.name)
    for (const name of pluginMigrationNames()) expect(names).not.toContain(name)
    expect(await tableExists()).toBe(false)
    expect(await tableExists(JOURNAL_TABLE)).toBe(false)
    expect(await pluginFunctions()).toEqual([])
  })

  it(
    "run with the plugin adds its tables and its migrations rows, leaving the data and core's migrations as they were",
    async () => {
      await runWithPlugin()

      expect(await tableExists()).toBe(true)
      expect(await tableExists(JOURNAL_TABLE)).toBe(true)
      expect(await pluginFunctions()).toContain("pcp_lock_collection_v1")
      expect(await reconcilerIndexes()).toEqual(RECONCILER_INDEXES)
      expect(await commitAttemptsLanguage()).toBe("plpgsql")
      const executed = await executedMigrations()
      expect(executed.slice(0, coreMigrations.length)).toEqual(coreMigrations)
      expect(executed.slice(coreMigrations.length).map((m) => m.name)).toEqual(pluginMigrationNames())
      expect(await existingData()).toEqual(dataBefore)

      // The table works with the data that was already there.
      await client.query(`INSERT INTO ${TABLE} (provider_id, is_enabled) VALUES ('manual', false)`)
      const { rows } = await client.query(`SELECT provider_id, is_enabled FROM ${TABLE}`)
      expect(rows).toEqual([{ provider_id: "manual", is_enabled: false }])
      await client.query(`DELETE FROM ${TABLE}`)
    },
    180_000
  )

  it(
    "running the migrations again is a no-op: nothing pending, same migrations rows, the plugin's data kept",
    async () => {
      await runWithPlugin()
      await client.query(`INSERT INTO ${TABLE} (provider_id, is_enabled) VALUES ('manual', false)`)
      const executed = await executedMigrations()

      await runWithPlugin()

      expect(await executedMigrations()).toEqual(executed)
      const { rows } = await client.query(`SELECT provider_id, is_enabled FROM ${TABLE}`)
      expect(rows).toEqual([{ provider_id: "manual", is_enabled: false }])
      expect(await existingData()).toEqual(dataBefore)
      const show = await medusaCli(["migrations", "show"], dbUrl)
      expect({ code: show.code, pending: /\[ \]/.test(show.output) }).toEqual({ code: 0, pending: false })
      await client.query(`DELETE FROM ${TABLE}`)
    },
    180_000
  )

  it(
    "revert (the plugin's newest migration being the last executed) undoes that migration and only it; run brings " +
      "it back",
    async () => {
      await runWithPlugin()
      const names = pluginMigrationNames()
      const newest = names[names.length - 1]
      const executed = await executedMigrations()
      expect(executed[executed.length - 1].name).toBe(newest)
      const functions = await pluginFunctions()
      // The newest migration makes pcp_commit_attempts_v1 a PL/pgSQL function (CreatePaymentCollectionCommitAttemptsPlpgsql).
      expect(newest).toMatch(/^CreatePaymentCollectionCommitAttemptsPlpgsql/)
      expect(await commitAttemptsLanguage()).toBe("plpgsql")

      const revert = await medusaCli(["migrations", "revert"], dbUrl)

      expect({ code: revert.code, reverted: revert.output.includes(`Migration ${newest} has been`) }).toEqual({
        code: 0,
        reverted: true,
      })
      expect(await commitAttemptsLanguage()).toBe("sql") // as CreatePaymentCollectionFunctions made it
      expect(await pluginFunctions()).toEqual(functions) // older migrations' functions, indexes and tables stay
      expect(await reconcilerIndexes()).toEqual(RECONCILER_INDEXES)
      expect(await tableExists(STATUS_CHECK_TABLE)).toBe(true)
      expect(await tableExists(JOURNAL_TABLE)).toBe(true)
      expect(await tableExists()).toBe(true)
      expect(await executedMigrations()).toEqual(executed.slice(0, -1))
      expect(await existingData()).toEqual(dataBefore)

      await runWithPlugin()

      expect(await commitAttemptsLanguage()).toBe("plpgsql")
      expect(await pluginFunctions()).toEqual(functions)
      const again = await executedMigrations()
      expect(again.slice(0, -1)).toEqual(executed.slice(0, -1))
      expect(again[again.length - 1].name).toBe(newest)
      expect(await existingData()).toEqual(dataBefore)
    },
    180_000
  )
})
