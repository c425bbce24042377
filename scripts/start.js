#!/usr/bin/env node
"use strict"

// `npm start`: a demo Medusa 1.20 backend with the plugin, seeded so the
// endpoints can be called at once. Embedded PostgreSQL with its data in
// .medusa-demo/ unless DATABASE_URL is set.

const fs = require("fs")
const path = require("path")
const { Client } = require("pg")
const { startPostgres, createDatabase, databaseUrl } = require("./lib/postgres")
const { runMigrations, startBackend, REPO_ROOT } = require("./lib/medusa-host")

const DEMO_DATABASE = "medusa_demo"
const DEMO_DIR = path.join(REPO_ROOT, ".medusa-demo")
const DEMO_DATA_DIR = path.join(DEMO_DIR, "pgdata")
const BACKEND_LOG = path.join(DEMO_DIR, "backend.log")
const ADMIN_TOKEN = "demo-admin-token"
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

function printWelcome(url, startedInMs) {
  const first = COLLECTIONS[0].id
  console.log(`
medusa-plugin-payment-collections demo is up on ${url} (ready in ${(startedInMs / 1000).toFixed(1)} s)

Payment collections (region ${REGION_ID}, provider "manual"):
${COLLECTIONS.map((c) => `  ${c.id}  amount ${c.amount}  ${c.description}`).join("\n")}

Try:
  curl -s -X POST ${url}/store/payment-collections/${first}/sessions -H 'Content-Type: application/json' -d '{"provider_id":"manual"}'
  curl -s ${url}/store/payment-collections/${first}
Admin API token (header x-medusa-access-token): ${ADMIN_TOKEN}
  curl -s ${url}/admin/payment-collections/providers -H 'x-medusa-access-token: ${ADMIN_TOKEN}'

Backend log: .medusa-demo/backend.log
Ctrl+C stops the backend${process.env.DATABASE_URL ? "" : " and the embedded PostgreSQL (data kept in .medusa-demo/)"}.`)
}

async function main() {
  const started = Date.now()
  const port = Number(process.env.PORT || 9000)
  const database = await prepareDatabase()
  let backend
  const stop = async (code) => {
    await backend?.stop().catch(() => {})
    await database.stopPostgres().catch(() => {})
    process.exit(code)
  }
  process.on("SIGINT", () => stop(0))
  process.on("SIGTERM", () => stop(0))
  try {
    await runMigrations({ hostDir: REPO_ROOT, databaseUrl: database.url })
    await seed(database.url)
    fs.mkdirSync(DEMO_DIR, { recursive: true })
    backend = await startBackend({
      hostDir: REPO_ROOT,
      databaseUrl: database.url,
      port,
      env: { LOG_LEVEL: process.env.LOG_LEVEL || "info" },
      logFile: BACKEND_LOG,
    })
  } catch (err) {
    console.error(err.stack || err)
    await stop(1)
  }
  printWelcome(backend.url.replace("127.0.0.1", "localhost"), Date.now() - started)
}

main()
