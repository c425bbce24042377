"use strict"

const crypto = require("crypto")
const fs = require("fs")
const http = require("http")
const os = require("os")
const path = require("path")
const { Client } = require("pg")
const { startPostgres, createDatabase, databaseUrl } = require("../../scripts/lib/postgres")
const { runMigrations, startBackend, REPO_ROOT } = require("../../scripts/lib/medusa-host")
const { startFakePsp } = require("../../scripts/lib/fake-psp")
const { startFakeStripe, stripeHostEnv, STRIPE_TEST_API_KEY, STRIPE_TEST_WEBHOOK_SECRET } = require("../../scripts/lib/fake-stripe")
const { startPgbouncer } = require("../../scripts/lib/pgbouncer")

const HOST_DIR = path.resolve(__dirname, "../host")
// The shared backend reconciles every half second, so a spec sees what the
// reconciler finishes (a retried delete, an adopted authorization) without
// waiting a minute, and concludes a finder's search a second after the call
// (the providers here answer at once) instead of five minutes. Its status sync
// is off: its polls of every pending session of the run would land in other
// specs' provider call counts; the specs of the sync start backends of their
// own. Its other options are the defaults.
const SHARED_BACKEND_OPTIONS = { reconcile_interval_ms: 500, finder_settle_ms: 1000, status_sync_window_hours: 0 }

async function createAdminUser(url) {
  const token = `pcp_test_${crypto.randomBytes(16).toString("hex")}`
  const client = new Client({ connectionString: url })
  await client.connect()
  try {
    await client.query(
      `INSERT INTO "user" (id, email, first_name, last_name, api_token, role)
       VALUES ($1, $2, 'Test', 'Admin', $3, 'admin')`,
      ["usr_pcp_test_admin", "admin@pcp.test", token]
    )
  } finally {
    await client.end()
  }
  return token
}

// A request on a connection of its own, closed afterwards. (fetch would leave a
// keep-alive socket in the process-wide pool, for a test to reuse just as the
// backend closes it.)
function getOnce(url) {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false, headers: { connection: "close" } }, (res) => {
        res.resume()
        res.on("end", () => resolve(res.statusCode))
      })
      .on("error", reject)
  })
}

function log(message) {
  process.stderr.write(`[pcp-harness] ${message}\n`)
}

/**
 * Starts the run's PostgreSQL and shared backend and writes the test env file
 * (helpers/env.ts) named by process.env[harness.envFileVar]. With
 * `viaPgbouncer`, PgBouncer in transaction mode stands between every backend
 * and PostgreSQL (the tests' own connections stay direct).
 */
async function setUpHarness({ name, envFileVar, viaPgbouncer }) {
  const started = Date.now()
  const withPlugin = process.env.HOST_WITHOUT_PLUGIN !== "1"
  if (withPlugin && !fs.existsSync(path.join(REPO_ROOT, "dist"))) {
    throw new Error("dist/ is missing: run `npm run build` first (or set HOST_WITHOUT_PLUGIN=1)")
  }

  // Everything started is recorded here first, so a failure half-way can undo it
  // (jest skips globalTeardown when globalSetup throws).
  const ctx = { psp: null, stripe: null, pg: null, pgbouncer: null, dbName: null, backend: null, envFile: null }
  globalThis.__PCP_HARNESS__ = { ...globalThis.__PCP_HARNESS__, [name]: ctx }
  try {
    // One PSP for the harness, started before any backend: every backend (this
    // one, and each extra one a spec starts with the env file's pspUrl) talks to
    // the same provider, whose state outlives any of them. Not a process-wide
    // variable: a second harness (the PgBouncer project) has a PSP of its own.
    ctx.psp = await startFakePsp()
    // Likewise one fake Stripe API: every backend of the harness registers the
    // real medusa-payment-stripe against it (host/medusa-config.js).
    ctx.stripe = await startFakeStripe()
    const providerEnv = { TEST_PAY_PSP_URL: ctx.psp.url, ...stripeHostEnv(ctx.stripe.url) }
    ctx.pg = await startPostgres({})
    if (viaPgbouncer) ctx.pgbouncer = await startPgbouncer({ serverUrl: ctx.pg.baseUrl })
    const pgReady = Date.now()

    ctx.dbName = `pcp_test_${Date.now()}_${crypto.randomBytes(3).toString("hex")}`
    await createDatabase(ctx.pg.baseUrl, ctx.dbName)
    const dbUrl = databaseUrl(ctx.pg.baseUrl, ctx.dbName)
    const backendDbUrl = ctx.pgbouncer ? databaseUrl(ctx.pgbouncer.baseUrl, ctx.dbName) : dbUrl

    await runMigrations({ hostDir: HOST_DIR, databaseUrl: backendDbUrl, env: providerEnv })
    const migrated = Date.now()
    const adminToken = await createAdminUser(dbUrl)

    ctx.backend = await startBackend({
      hostDir: HOST_DIR,
      databaseUrl: backendDbUrl,
      port: 0,
      env: { ...providerEnv, PAYMENT_COLLECTIONS_OPTIONS: JSON.stringify(SHARED_BACKEND_OPTIONS) },
      logFile: process.env.PCP_BACKEND_LOG || undefined,
    })
    if (ctx.pgbouncer) {
      // The backend answers /health without touching the database; one store read makes it connect.
      await getOnce(`${ctx.backend.url}/store/regions`)
      const clients = await ctx.pgbouncer.clientCount(ctx.dbName)
      if (clients === 0) throw new Error("the backend is up but holds no connection through PgBouncer")
    }

    ctx.envFile = path.join(os.tmpdir(), `pcp-test-env-${process.pid}-${crypto.randomBytes(4).toString("hex")}.json`)
    const testEnv = {
      backendUrl: ctx.backend.url,
      databaseUrl: dbUrl,
      backendDatabaseUrl: backendDbUrl,
      pooler: ctx.pgbouncer ? "pgbouncer" : null,
      baseUrl: ctx.pg.baseUrl,
      databaseName: ctx.dbName,
      adminToken,
      hostDir: HOST_DIR,
      withPlugin,
      pspUrl: ctx.psp.url,
      stripeUrl: ctx.stripe.url,
      stripeApiKey: STRIPE_TEST_API_KEY,
      stripeWebhookSecret: STRIPE_TEST_WEBHOOK_SECRET,
    }
    fs.writeFileSync(ctx.envFile, JSON.stringify(testEnv, null, 2))
    process.env[envFileVar] = ctx.envFile

    const s = (ms) => (ms / 1000).toFixed(1) + " s"
    log(
      `${name} ready in ${s(Date.now() - started)} (postgres ${ctx.pg.embedded ? "embedded" : "external"}` +
        `${ctx.pgbouncer ? " behind PgBouncer (transaction mode)" : ""} ` +
        `${s(pgReady - started)}, migrations ${s(migrated - pgReady)}, backend ${s(Date.now() - migrated)}; ` +
        `plugin ${withPlugin ? "loaded" : "left out"}) ${ctx.backend.url}, fake PSP ${ctx.psp.url}, ` +
        `fake Stripe ${ctx.stripe.url}`
    )
  } catch (err) {
    await require("./global-teardown")
      .tearDownHarness(name)
      .catch((e) => log(`cleanup after failed setup: ${e.message}`))
    throw err
  }
}

module.exports = async function globalSetup() {
  await setUpHarness({ name: "integration", envFileVar: "PCP_TEST_ENV_FILE", viaPgbouncer: false })
}
module.exports.setUpHarness = setUpHarness
