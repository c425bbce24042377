import fs from "fs"

export interface TestEnv {
  /** Shared backend started by global-setup, e.g. http://127.0.0.1:41234 */
  backendUrl: string
  /** The run's fresh database (pcp_test_<timestamp>_<random>), reached directly */
  databaseUrl: string
  /** The same database as the backends reach it: through PgBouncer in the "pgbouncer" project, else databaseUrl */
  backendDatabaseUrl: string
  /** "pgbouncer" when the backends reach PostgreSQL through PgBouncer (transaction mode) */
  pooler: "pgbouncer" | null
  /** Server URL without a database */
  baseUrl: string
  databaseName: string
  /** Send as `x-medusa-access-token` to use the admin API */
  adminToken: string
  /** Directory of the host fixture (medusa-config.js) */
  hostDir: string
  /** false when HOST_WITHOUT_PLUGIN=1 left the plugin under test out */
  withPlugin: boolean
  /** The fake PSP every backend's test payment providers call (TEST_PAY_PSP_URL) */
  pspUrl: string
  /**
   * The fake Stripe API (integration-tests/fixtures/fake-stripe) every backend's
   * medusa-payment-stripe calls; the backends register it with these test keys.
   */
  stripeUrl: string
  stripeApiKey: string
  /** The webhook endpoint secret of the backends' POST /stripe/hooks */
  stripeWebhookSecret: string
}

let cached: TestEnv | undefined

export function testEnv(): TestEnv {
  if (cached) return cached
  const file = process.env.PCP_TEST_ENV_FILE
  if (!file || !fs.existsSync(file)) {
    throw new Error("PCP_TEST_ENV_FILE is not set or missing: run the tests through jest (integration project)")
  }
  cached = JSON.parse(fs.readFileSync(file, "utf8")) as TestEnv
  return cached
}

/**
 * What testEnv() answers from now on in this test file (each file has its own
 * module registry): a spec that moves onto a database of its own
 * (helpers/own-database.ts) names it, and the backend it started, here, so
 * that every helper (db, api, adminApi, startExtraBackend…) uses them.
 */
export function replaceTestEnv(changes: Partial<TestEnv>): TestEnv {
  ownDatabase ||= changes.backendDatabaseUrl !== undefined
  cached = { ...testEnv(), ...changes }
  return cached
}

let ownDatabase = false

/** Whether this test file's backends use the run's shared database (not one of its own). */
export function onSharedDatabase(): boolean {
  return !ownDatabase
}
