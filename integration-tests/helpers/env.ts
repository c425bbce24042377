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
