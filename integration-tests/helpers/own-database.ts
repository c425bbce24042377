import crypto from "crypto"
import path from "path"
import { Client } from "pg"
import { replaceTestEnv, testEnv } from "./env"
import { medusaHost, stopExtraBackends } from "./backend"
import { db } from "./factories"

// A test file on a database of its own, on the run's PostgreSQL server.
//
// Every backend on a database takes part in what happens there: each runs the
// plugin's reconciler (sweep and status sync) over all collections, and core's
// event enqueuer hands every event staged in that database's staged_job to its
// own event bus. A spec that must know which process did something (the webhook,
// not the status sync; a worker, not the server) or that runs backends with
// other options (a switch turned off) therefore cannot share the run's database
// with the shared backend.

interface PostgresLib {
  createDatabase(baseUrl: string, name: string): Promise<void>
  dropDatabase(baseUrl: string, name: string): Promise<void>
  databaseUrl(baseUrl: string, name: string): string
}
// eslint-disable-next-line @typescript-eslint/no-var-requires
const postgres: PostgresLib = require(path.resolve(__dirname, "../../scripts/lib/postgres.js"))

export interface OwnDatabase {
  name: string
  url: string
  /** Stops the backends the file started, closes the spec's pool, drops the database (kept with PCP_KEEP_DB=1). */
  drop(): Promise<void>
}

/**
 * Creates and migrates a database of the file's own (the host's migrations,
 * with the same payment providers as every backend of the run), adds an admin,
 * and makes testEnv() name it: from then on `db`, `adminHeaders()` and
 * startExtraBackend use it. Name the backend the file's `api`/`adminApi` talk
 * to with `replaceTestEnv({ backendUrl })` once it runs.
 */
export async function useOwnDatabase(label: string): Promise<OwnDatabase> {
  const env = testEnv()
  const name = `${env.databaseName}_${label}_${crypto.randomBytes(2).toString("hex")}`.slice(0, 63)
  await postgres.createDatabase(env.baseUrl, name)
  const url = postgres.databaseUrl(env.baseUrl, name)
  await medusaHost.runMigrations({
    hostDir: env.hostDir,
    databaseUrl: url,
    env: {
      TEST_PAY_PSP_URL: env.pspUrl,
      FAKE_STRIPE_URL: env.stripeUrl,
      FAKE_STRIPE_API_KEY: env.stripeApiKey,
      FAKE_STRIPE_WEBHOOK_SECRET: env.stripeWebhookSecret,
    },
  })
  const adminToken = `pcp_test_${crypto.randomBytes(16).toString("hex")}`
  const client = new Client({ connectionString: url })
  await client.connect()
  try {
    await client.query(
      `INSERT INTO "user" (id, email, first_name, last_name, api_token, role)
       VALUES ('usr_pcp_test_admin', 'admin@pcp.test', 'Test', 'Admin', $1, 'admin')`,
      [adminToken]
    )
  } finally {
    await client.end()
  }
  // The pool of the run's database (if the file used it already) is closed; the next query opens one here.
  await db.end()
  replaceTestEnv({ databaseUrl: url, backendDatabaseUrl: url, pooler: null, databaseName: name, adminToken })
  return {
    name,
    url,
    drop: async () => {
      await stopExtraBackends()
      await db.end()
      if (process.env.PCP_KEEP_DB !== "1") await postgres.dropDatabase(env.baseUrl, name)
    },
  }
}
