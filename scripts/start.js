#!/usr/bin/env node
"use strict"

// `npm start`: a demo Medusa 1.20 backend with the plugin and its admin
// dashboard at /app, seeded so the endpoints can be called at once and the
// dashboard has an order whose edit was paid through two providers. Embedded
// PostgreSQL with its data in .medusa-demo/ unless DATABASE_URL is set.
// DEMO_DIR puts the demo's data (database, PSP state, log) elsewhere, e.g. a
// second demo or the spec of this command; the dashboard's build stays in
// .medusa-demo/admin (medusa-config.js).

const { applyRepoEnv, repoEnv } = require("./lib/repo-env")

applyRepoEnv()
const crypto = require("crypto")
const fs = require("fs")
const path = require("path")
const { spawn } = require("child_process")
const { Client } = require("pg")
const { startPostgres, createDatabase, databaseUrl } = require("./lib/postgres")
const { runMigrations, startBackend, REPO_ROOT } = require("./lib/medusa-host")
const { ensureAdminLogin } = require("./lib/admin-login")
const { createShop, placeOrder, seedOrderWithPaidEdit } = require("./lib/order-edit-seed")
const { startFakePsp } = require("./lib/fake-psp")

const DEMO_DATABASE = "medusa_demo"
const DEMO_DIR = path.resolve(REPO_ROOT, process.env.DEMO_DIR || ".medusa-demo")
const DEMO_DATA_DIR = path.join(DEMO_DIR, "pgdata")
const BACKEND_LOG = path.join(DEMO_DIR, "backend.log")
// The demo's card provider (test-pay) talks to the fake PSP; its intents are kept here across restarts.
const PSP_STATE_FILE = path.join(DEMO_DIR, "psp-state.json")
const ADMIN_TOKEN = "demo-admin-token"
const DASHBOARD_LOGIN = { email: "admin@medusa-test.com", password: "supersecret" }
const ADMIN_BUILD_DIR = path.join(REPO_ROOT, ".medusa-demo", "admin") // medusa-config.js: @medusajs/admin outDir
const SHOP_NAME = "Demo shop"
const SHOPPER_EMAIL = "demo-shopper@example.com"
const REGION_ID = "reg_demo"
const COLLECTIONS = [
  { id: "paycol_demo_1", amount: 1000, description: "Demo order edit (10.00 USD)" },
  { id: "paycol_demo_2", amount: 2500, description: "Demo order edit (25.00 USD)" },
  { id: "paycol_demo_3", amount: 4999, description: "Demo order edit (49.99 USD)" },
]

async function prepareDatabase() {
  if (process.env.DATABASE_URL) {
    return { url: process.env.DATABASE_URL, stopPostgres: async () => {} }
  }
  const pg = await startPostgres({ dataDir: DEMO_DATA_DIR, persistent: true })
  await createDatabase(pg.baseUrl, DEMO_DATABASE).catch((err) => {
    if (err.code !== "42P04") throw err // 42P04: it exists from an earlier run
  })
  return { url: databaseUrl(pg.baseUrl, DEMO_DATABASE), stopPostgres: pg.stop }
}

// Idempotent: every insert skips rows an earlier start already made.
async function seed(url) {
  const client = new Client({ connectionString: url })
  await client.connect()
  try {
    await client.query("BEGIN")
    await client.query(
      `INSERT INTO "user" (id, email, api_token, role)
       VALUES ('usr_demo_admin', 'admin@example.com', $1, 'admin')
       ON CONFLICT DO NOTHING`,
      [ADMIN_TOKEN]
    )
    await client.query(
      `INSERT INTO payment_provider (id, is_installed) VALUES ('manual', true)
       ON CONFLICT (id) DO NOTHING`
    )
    await client.query(
      `INSERT INTO region (id, name, currency_code, tax_rate)
       VALUES ($1, 'Demo region', 'usd', 0) ON CONFLICT (id) DO NOTHING`,
      [REGION_ID]
    )
    await client.query(
      `INSERT INTO region_payment_providers (region_id, provider_id)
       VALUES ($1, 'manual') ON CONFLICT DO NOTHING`,
      [REGION_ID]
    )
    for (const c of COLLECTIONS) {
      await client.query(
        `INSERT INTO payment_collection
           (id, type, status, description, amount, region_id, currency_code, created_by)
         VALUES ($1, 'order_edit', 'not_paid', $2, $3, $4, 'usd', 'usr_demo_admin')
         ON CONFLICT (id) DO NOTHING`,
        [c.id, c.description, c.amount, REGION_ID]
      )
    }
    await client.query("COMMIT")
  } catch (err) {
    await client.query("ROLLBACK")
    throw err
  } finally {
    await client.end()
  }
}

// What `medusa-admin build` compiles that can change between starts: the
// project's own extensions (src/admin), the config and the admin's version.
function adminBuildStamp() {
  const hash = crypto.createHash("sha256")
  const walk = (dir) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const file = path.join(dir, entry.name)
      if (entry.isDirectory()) walk(file)
      else hash.update(file).update(fs.readFileSync(file))
    }
  }
  walk(path.join(REPO_ROOT, "src", "admin"))
  hash.update(fs.readFileSync(path.join(REPO_ROOT, "medusa-config.js")))
  hash.update(require("@medusajs/admin/package.json").version)
  return hash.digest("hex")
}

/**
 * Starts building the dashboard into .medusa-demo/admin unless the last build
 * is of the same sources. `done` resolves with the milliseconds the build took
 * (null: none was needed); `stop()` ends a build still running.
 */
function startAdminBuildWhenNeeded() {
  const stampFile = path.join(ADMIN_BUILD_DIR, ".pcp-build-stamp")
  const stamp = adminBuildStamp()
  const current =
    fs.existsSync(path.join(ADMIN_BUILD_DIR, "index.html")) &&
    fs.existsSync(stampFile) &&
    fs.readFileSync(stampFile, "utf8") === stamp
  if (current) return { done: Promise.resolve(null), stop: () => {} }
  console.log("Building the admin dashboard (medusa-admin build, about a minute)…")
  const started = Date.now()
  const child = spawn(path.join(REPO_ROOT, "node_modules", ".bin", "medusa-admin"), ["build"], {
    cwd: REPO_ROOT,
    env: repoEnv(),
    stdio: ["ignore", "inherit", "inherit"],
  })
  const done = new Promise((resolve, reject) => {
    child.on("error", reject)
    child.on("close", (code, signal) => {
      if (code !== 0) return reject(new Error(`medusa-admin build exited with ${code ?? signal}`))
      fs.writeFileSync(stampFile, stamp)
      resolve(Date.now() - started)
    })
  })
  done.catch(() => {}) // awaited later; a failure before then is reported there
  const stop = () => child.exitCode === null && child.signalCode === null && child.kill("SIGTERM")
  return { done, stop }
}

/**
 * Once per database: a shop (region with manual and test-pay, shipping,
 * a product), an order whose edit was paid through both providers, and an
 * order without edits. Answers the two order ids.
 */
async function seedOrders(url, dbUrl, pspUrl) {
  const client = new Client({ connectionString: dbUrl })
  await client.connect()
  try {
    const existing = await client.query(
      `SELECT o.id, EXISTS (SELECT 1 FROM order_edit oe WHERE oe.order_id = o.id) AS edited
         FROM "order" o WHERE o.email = $1 ORDER BY o.created_at`,
      [SHOPPER_EMAIL]
    )
    const edited = existing.rows.find((r) => r.edited)
    const plain = existing.rows.find((r) => !r.edited)
    if (edited && plain) return { editedOrderId: edited.id, plainOrderId: plain.id }

    const { rows } = await client.query(
      `SELECT iso_2 FROM country WHERE region_id IS NULL ORDER BY (iso_2 = 'us') DESC, iso_2 LIMIT 1`
    )
    const adminHeaders = { "x-medusa-access-token": ADMIN_TOKEN }
    const shop = await createShop(url, { adminHeaders, countryCode: rows[0].iso_2, name: SHOP_NAME })
    const { order } = await seedOrderWithPaidEdit(url, shop, { adminHeaders, email: SHOPPER_EMAIL, pspUrl })
    const other = await placeOrder(url, shop, { email: SHOPPER_EMAIL })
    return { editedOrderId: order.id, plainOrderId: other.id }
  } finally {
    await client.end()
  }
}

/** A path as printed: relative when it is under the working directory. */
function shownPath(file) {
  const relative = path.relative(process.cwd(), file)
  return relative && !relative.startsWith("..") && !path.isAbsolute(relative) ? relative : file
}

function printWelcome(url, startedInMs, orders) {
  const first = COLLECTIONS[0].id
  console.log(`
medusa-plugin-payment-collections demo is up on ${url} (ready in ${(startedInMs / 1000).toFixed(1)} s)

Admin dashboard: ${url}/app   log in as ${DASHBOARD_LOGIN.email} / ${DASHBOARD_LOGIN.password}
  Settings › Payment collections:  ${url}/app/a/settings/payment-collections
  An order whose edit was paid through manual and test-pay:  ${url}/app/a/orders/${orders.editedOrderId}
  An order without edits (no widget):  ${url}/app/a/orders/${orders.plainOrderId}

Payment collections (region ${REGION_ID}, provider "manual"):
${COLLECTIONS.map((c) => `  ${c.id}  amount ${c.amount}  ${c.description}`).join("\n")}

Try:
  curl -s -X POST ${url}/store/payment-collections/${first}/sessions -H 'Content-Type: application/json' -d '{"provider_id":"manual"}'
  curl -s ${url}/store/payment-collections/${first}
Admin API token (header x-medusa-access-token): ${ADMIN_TOKEN}
  curl -s ${url}/admin/payment-collections/providers -H 'x-medusa-access-token: ${ADMIN_TOKEN}'

Backend log: ${shownPath(BACKEND_LOG)}
Ctrl+C stops the backend${process.env.DATABASE_URL ? "" : ` and the embedded PostgreSQL (data kept in ${shownPath(DEMO_DIR)}/)`}.`)
}

async function main() {
  const started = Date.now()
  const port = Number(process.env.PORT || 9000)
  let adminBuild
  let database
  let psp
  let backend
  let orders
  // Once, whichever comes first: Ctrl+C sends SIGINT to this process and to its
  // children alike, and a second signal must not end this process before
  // PostgreSQL has stopped.
  let stopping = null
  const stop = (code) =>
    (stopping ??= (async () => {
      adminBuild?.stop()
      await backend?.stop().catch(() => {})
      await psp?.stop().catch(() => {})
      await database?.stopPostgres().catch(() => {})
      process.exit(code)
    })())
  process.on("SIGINT", () => stop(0))
  process.on("SIGTERM", () => stop(0))
  try {
    fs.mkdirSync(DEMO_DIR, { recursive: true })
    // The dashboard builds (about a minute on a fresh clone) while PostgreSQL
    // starts and the database is migrated and seeded.
    adminBuild = startAdminBuildWhenNeeded()
    database = await prepareDatabase()
    psp = await startFakePsp({ stateFile: PSP_STATE_FILE })
    await runMigrations({ hostDir: REPO_ROOT, databaseUrl: database.url, env: { TEST_PAY_PSP_URL: psp.url } })
    await seed(database.url)
    const builtInMs = await adminBuild.done
    if (builtInMs !== null) console.log(`Admin dashboard built in ${(builtInMs / 1000).toFixed(1)} s`)
    backend = await startBackend({
      hostDir: REPO_ROOT,
      databaseUrl: database.url,
      port,
      env: { LOG_LEVEL: process.env.LOG_LEVEL || "info", TEST_PAY_PSP_URL: psp.url },
      logFile: BACKEND_LOG,
    })
    await ensureAdminLogin(backend.url, { apiToken: ADMIN_TOKEN, ...DASHBOARD_LOGIN })
    orders = await seedOrders(backend.url, database.url, psp.url)
  } catch (err) {
    console.error(err.stack || err)
    await stop(1)
  }
  printWelcome(backend.url.replace("127.0.0.1", "localhost"), Date.now() - started, orders)
}

main()
