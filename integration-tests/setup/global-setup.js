"use strict"

const crypto = require("crypto")
const fs = require("fs")
const os = require("os")
const path = require("path")
const { Client } = require("pg")
const { startPostgres, createDatabase, databaseUrl } = require("../../scripts/lib/postgres")
const { runMigrations, startBackend, REPO_ROOT } = require("../../scripts/lib/medusa-host")
const { startFakePsp } = require("../../scripts/lib/fake-psp")

const HOST_DIR = path.resolve(__dirname, "../host")
// The shared backend reconciles every half second, so a spec sees what the
// reconciler finishes (a retried delete, an adopted authorization) without
// waiting a minute; its other options are the defaults.
const SHARED_BACKEND_OPTIONS = { reconcile_interval_ms: 500 }

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

function log(message) {
  process.stderr.write(`[pcp-harness] ${message}\n`)
}

module.exports = async function globalSetup() {
  const started = Date.now()
  const withPlugin = process.env.HOST_WITHOUT_PLUGIN !== "1"
  if (withPlugin && !fs.existsSync(path.join(REPO_ROOT, "dist"))) {
    throw new Error("dist/ is missing: run `npm run build` first (or set HOST_WITHOUT_PLUGIN=1)")
  }

  // Everything started is recorded here first, so a failure half-way can undo it
  // (jest skips globalTeardown when globalSetup throws).
  const ctx = { psp: null, pg: null, dbName: null, backend: null, envFile: null }
  globalThis.__PCP_HARNESS__ = ctx
  try {
    // One PSP for the whole run, started before any backend: every backend
    // (this one and each extra one a spec starts) inherits TEST_PAY_PSP_URL, so
    // all of them talk to the same provider, whose state outlives any of them.
    ctx.psp = await startFakePsp()
    process.env.TEST_PAY_PSP_URL = ctx.psp.url
    ctx.pg = await startPostgres({})
    const pgReady = Date.now()

    ctx.dbName = `pcp_test_${Date.now()}_${crypto.randomBytes(3).toString("hex")}`
    await createDatabase(ctx.pg.baseUrl, ctx.dbName)
    const dbUrl = databaseUrl(ctx.pg.baseUrl, ctx.dbName)

    await runMigrations({ hostDir: HOST_DIR, databaseUrl: dbUrl })
    const migrated = Date.now()
    const adminToken = await createAdminUser(dbUrl)

    ctx.backend = await startBackend({
      hostDir: HOST_DIR,
      databaseUrl: dbUrl,
      port: 0,
      env: { PAYMENT_COLLECTIONS_OPTIONS: JSON.stringify(SHARED_BACKEND_OPTIONS) },
      logFile: process.env.PCP_BACKEND_LOG || undefined,
    })

    ctx.envFile = path.join(os.tmpdir(), `pcp-test-env-${process.pid}-${crypto.randomBytes(4).toString("hex")}.json`)
    const testEnv = {
      backendUrl: ctx.backend.url,
      databaseUrl: dbUrl,
      baseUrl: ctx.pg.baseUrl,
      databaseName: ctx.dbName,
      adminToken,
      hostDir: HOST_DIR,
      withPlugin,
      pspUrl: ctx.psp.url,
    }
    fs.writeFileSync(ctx.envFile, JSON.stringify(testEnv, null, 2))
    process.env.PCP_TEST_ENV_FILE = ctx.envFile

    const s = (ms) => (ms / 1000).toFixed(1) + " s"
    log(
      `ready in ${s(Date.now() - started)} (postgres ${ctx.pg.embedded ? "embedded" : "external"} ` +
        `${s(pgReady - started)}, migrations ${s(migrated - pgReady)}, backend ${s(Date.now() - migrated)}; ` +
        `plugin ${withPlugin ? "loaded" : "left out"}) ${ctx.backend.url}, fake PSP ${ctx.psp.url}`
    )
  } catch (err) {
    await require("./global-teardown")().catch((e) => log(`cleanup after failed setup: ${e.message}`))
    throw err
  }
}
