#!/usr/bin/env node
"use strict"

// Proves the published artifact, not the repository: packs the plugin, installs
// the tarball into a plain Medusa 1.20.11 backend made from nothing in a temp
// folder, runs `medusa migrations run` and `medusa start` there, and calls the
// plugin's endpoint. Uses DATABASE_URL's server when set, else embedded
// PostgreSQL.

const fs = require("fs")
const os = require("os")
const path = require("path")
const { execFileSync } = require("child_process")
const { Client } = require("pg")
const { startPostgres, createDatabase, dropDatabase, databaseUrl } = require("./lib/postgres")
const { runMigrations, startBackend, REPO_ROOT } = require("./lib/medusa-host")

const HOST_DEPENDENCIES = {
  "@medusajs/medusa": "1.20.11",
  "@medusajs/medusa-cli": "1.3.23",
  "@medusajs/event-bus-local": "1.9.9",
  "@medusajs/cache-inmemory": "1.8.11",
  "medusa-interfaces": "1.3.10",
  "medusa-payment-manual": "1.0.25",
  typeorm: "0.3.16",
}

function run(cmd, args, cwd) {
  execFileSync(cmd, args, { cwd, stdio: ["ignore", "inherit", "inherit"] })
}

function pack(outDir) {
  const out = execFileSync("npm", ["pack", "--silent", "--pack-destination", outDir], {
    cwd: REPO_ROOT,
    encoding: "utf8",
  })
  return path.join(outDir, out.trim().split("\n").pop())
}

function writeHost(hostDir, tarball) {
  fs.writeFileSync(
    path.join(hostDir, "package.json"),
    JSON.stringify(
      {
        name: "plain-medusa-host",
        private: true,
        dependencies: { ...HOST_DEPENDENCIES, "medusa-plugin-payment-collections": `file:${tarball}` },
      },
      null,
      2
    )
  )
  fs.writeFileSync(
    path.join(hostDir, "medusa-config.js"),
    `module.exports = {
  projectConfig: {
    database_url: process.env.DATABASE_URL,
    database_type: "postgres",
    store_cors: "http://localhost:8000",
    admin_cors: "http://localhost:7001",
    jwt_secret: "smoke", cookie_secret: "smoke",
  },
  modules: {
    eventBus: { resolve: "@medusajs/event-bus-local" },
    cacheService: { resolve: "@medusajs/cache-inmemory" },
  },
  plugins: [
    "medusa-payment-manual",
    { resolve: "medusa-plugin-payment-collections", options: {} },
  ],
}
`
  )
}

async function seed(url) {
  const client = new Client({ connectionString: url })
  await client.connect()
  try {
    await client.query(`INSERT INTO payment_provider (id, is_installed) VALUES ('manual', true) ON CONFLICT DO NOTHING`)
    await client.query(`INSERT INTO region (id, name, currency_code, tax_rate) VALUES ('reg_smoke', 'Smoke', 'usd', 0)`)
    await client.query(`INSERT INTO region_payment_providers (region_id, provider_id) VALUES ('reg_smoke', 'manual')`)
    await client.query(
      `INSERT INTO payment_collection (id, type, status, amount, region_id, currency_code, created_by)
       VALUES ('paycol_smoke', 'order_edit', 'not_paid', 1234, 'reg_smoke', 'usd', 'smoke')`
    )
  } finally {
    await client.end()
  }
}

async function main() {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "pcp-smoke-"))
  const hostDir = path.join(work, "host")
  fs.mkdirSync(hostDir)
  const pg = await startPostgres()
  const dbName = `pcp_smoke_${Date.now()}`
  let backend
  try {
    const tarball = pack(work)
    console.log(`packed ${path.basename(tarball)}`)
    writeHost(hostDir, tarball)
    run("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error"], hostDir)

    const installed = path.join(hostDir, "node_modules", "medusa-plugin-payment-collections")
    const shipped = fs.readdirSync(installed).sort()
    console.log(`installed package contains: ${shipped.join(", ")}`)

    await createDatabase(pg.baseUrl, dbName)
    const url = databaseUrl(pg.baseUrl, dbName)
    const cli = path.join(hostDir, "node_modules", ".bin", "medusa")
    await runMigrations({ hostDir, databaseUrl: url, cli })
    await seed(url)
    backend = await startBackend({ hostDir, databaseUrl: url, cli })

    const res = await fetch(`${backend.url}/store/payment-collections/paycol_smoke/sessions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ provider_id: "manual" }),
    })
    const body = await res.json()
    const servedBy = res.headers.get("x-payment-collections-plugin")
    const sessions = body.payment_collection?.payment_sessions ?? []
    const ok = res.status === 200 && servedBy && sessions.length === 1 && sessions[0].amount === 1234
    console.log(`POST /store/payment-collections/paycol_smoke/sessions → ${res.status}, served by ${servedBy}, ${sessions.length} session(s)`)
    if (!ok) {
      throw new Error(`unexpected answer: ${JSON.stringify(body)}`)
    }
    console.log("smoke test passed: the tarball installs, migrates and serves in a plain Medusa 1.20.11 host")
  } finally {
    await backend?.stop().catch(() => {})
    await dropDatabase(pg.baseUrl, dbName).catch(() => {})
    await pg.stop().catch(() => {})
    fs.rmSync(work, { recursive: true, force: true })
  }
}

main().catch((err) => {
  console.error(err.stack || err)
  process.exit(1)
})
