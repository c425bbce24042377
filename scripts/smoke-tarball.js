#!/usr/bin/env node
"use strict"

// Proves the published artifact, not the repository: packs the plugin once,
// then for the latest release of each Medusa 1.x minor the plugin is tried on,
// installs the tarball into a plain backend made from nothing in a temp
// folder, runs `medusa migrations run` and `medusa start` there, and calls the
// plugin's endpoint. Uses DATABASE_URL's server when set, else embedded
// PostgreSQL.
//
// The result must agree with package.json: every release inside the
// peerDependencies range of @medusajs/medusa must pass (installed as a user
// would, peers checked), every release outside it must fail (installed with
// --legacy-peer-deps, to see why). Either disagreement exits 1.
//
//   node scripts/smoke-tarball.js                 # the whole matrix
//   node scripts/smoke-tarball.js --medusa 1.20.11  # one release (a comma-separated list works too)

const fs = require("fs")
const os = require("os")
const path = require("path")
const { execFile } = require("child_process")
const semver = require("semver")
const { Client } = require("pg")
const { startPostgres, createDatabase, dropDatabase, databaseUrl } = require("./lib/postgres")
const { runMigrations, startBackend, REPO_ROOT } = require("./lib/medusa-host")
const { applyRepoEnv, repoEnv } = require("./lib/repo-env")

applyRepoEnv()

// Each release with the versions of its companions that the medusajs/medusa
// monorepo held at that release's tag (packages/*/package.json), and the typeorm
// its yarn.lock resolved (0.3.17 for all three; typeorm >= 0.3.23 does not
// boot Medusa 1.20.11, see README "Medusa versions").
//
// `overrides`: Medusa's own dependencies as they were at the tag. A backend of
// that release that really exists has these in its lockfile; installed fresh,
// 1.18.1 and 1.19.0 take today's versions through their caret ranges and do
// not work, plugin or not ("without the plugin" below shows it):
// - @medusajs/utils 1.11.11 no longer has SearchUtils.isSearchService, which
//   their plugin loader calls: `medusa start` dies;
// - medusa-test-utils 1.1.45 has an optional peer @medusajs/medusa ">1.19",
//   so npm (peers checked) nests a Medusa 2.x under theirs, whose
//   @medusajs/cli takes over node_modules/.bin/medusa.
const MATRIX = [
  {
    medusa: "1.18.1",
    dependencies: {
      "@medusajs/medusa-cli": "1.3.21",
      "@medusajs/event-bus-local": "1.9.7",
      "@medusajs/cache-inmemory": "1.8.10",
      "medusa-interfaces": "1.3.7",
      "medusa-payment-manual": "1.0.24",
      typeorm: "0.3.17",
    },
    overrides: {
      "@medusajs/utils": "1.11.1",
      "@medusajs/types": "1.11.8",
      "@medusajs/modules-sdk": "1.12.4",
      "@medusajs/orchestration": "0.5.0",
      "@medusajs/workflows-sdk": "0.1.0",
      "@medusajs/link-modules": "0.2.4",
      "@medusajs/core-flows": "0.0.2",
      "medusa-test-utils": "1.1.40",
    },
  },
  {
    medusa: "1.19.0",
    dependencies: {
      "@medusajs/medusa-cli": "1.3.22",
      "@medusajs/event-bus-local": "1.9.7",
      "@medusajs/cache-inmemory": "1.8.10",
      "medusa-interfaces": "1.3.7",
      "medusa-payment-manual": "1.0.24",
      typeorm: "0.3.17",
    },
    overrides: {
      "@medusajs/utils": "1.11.2",
      "@medusajs/types": "1.11.9",
      "@medusajs/modules-sdk": "1.12.5",
      "@medusajs/orchestration": "0.5.1",
      "@medusajs/workflows-sdk": "0.1.0",
      "@medusajs/link-modules": "0.2.5",
      "@medusajs/core-flows": "0.0.3",
      "medusa-test-utils": "1.1.40",
    },
  },
  {
    medusa: "1.20.11",
    dependencies: {
      "@medusajs/medusa-cli": "1.3.23",
      "@medusajs/event-bus-local": "1.9.9",
      "@medusajs/cache-inmemory": "1.8.11",
      "medusa-interfaces": "1.3.10",
      "medusa-payment-manual": "1.0.25",
      typeorm: "0.3.17",
    },
  },
]

const PEER_RANGE = require(path.join(REPO_ROOT, "package.json")).peerDependencies["@medusajs/medusa"]
const COLLECTION_AMOUNT = 1234

function run(cmd, args, cwd) {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd, env: repoEnv(), maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) {
        err.message = `${cmd} ${args.join(" ")} failed (${err.code}):\n${(stdout + stderr).slice(-6000)}`
        return reject(err)
      }
      resolve(stdout)
    })
  })
}

async function pack(outDir) {
  const out = await run("npm", ["pack", "--silent", "--pack-destination", outDir], REPO_ROOT)
  return path.join(outDir, out.trim().split("\n").pop())
}

function writeHost(hostDir, release, tarball) {
  fs.writeFileSync(
    path.join(hostDir, "package.json"),
    JSON.stringify(
      {
        name: "plain-medusa-host",
        private: true,
        dependencies: {
          "@medusajs/medusa": release.medusa,
          ...release.dependencies,
          "medusa-plugin-payment-collections": `file:${tarball}`,
        },
        ...(release.overrides ? { overrides: release.overrides } : {}),
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
    ...(process.env.SMOKE_WITHOUT_PLUGIN === "1"
      ? []
      : [{ resolve: "medusa-plugin-payment-collections", options: {} }]),
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
       VALUES ('paycol_smoke', 'order_edit', 'not_paid', $1, 'reg_smoke', 'usd', 'smoke')`,
      [COLLECTION_AMOUNT]
    )
  } finally {
    await client.end()
  }
}

/** Installs, migrates, starts and calls one release's host; resolves with what happened at each step. */
async function tryRelease(release, { tarball, work, pg }) {
  const hostDir = path.join(work, `host-${release.medusa}`)
  fs.mkdirSync(hostDir)
  const expected = semver.satisfies(release.medusa, PEER_RANGE)
  const result = { medusa: release.medusa, expected: expected ? "pass" : "fail", steps: {} }
  const dbName = `pcp_smoke_${release.medusa.replace(/\./g, "_")}_${Date.now()}`
  let backend
  const step = async (name, fn) => {
    const started = Date.now()
    try {
      return await fn()
    } finally {
      result.steps[name] = Math.round((Date.now() - started) / 100) / 10
    }
  }
  try {
    writeHost(hostDir, release, tarball)
    // Inside the range npm checks the peers as for any user; outside it would
    // refuse, and the point is to see whether the plugin would work anyway.
    const peerFlags = expected ? [] : ["--legacy-peer-deps"]
    await step("install", () =>
      run("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error", ...peerFlags], hostDir)
    )
    const installed = JSON.parse(
      fs.readFileSync(path.join(hostDir, "node_modules", "@medusajs", "medusa", "package.json"), "utf8")
    ).version
    if (installed !== release.medusa) throw new Error(`npm installed @medusajs/medusa ${installed}`)
    const cli = path.join(hostDir, "node_modules", ".bin", "medusa")
    const cliPackage = path.relative(path.join(hostDir, "node_modules"), fs.realpathSync(cli)).split(path.sep).slice(0, 2)
    if (!["@medusajs/medusa", "@medusajs/medusa-cli"].includes(cliPackage.join("/"))) {
      throw new Error(`node_modules/.bin/medusa is ${cliPackage.join("/")}'s, not Medusa 1.x's`)
    }

    await createDatabase(pg.baseUrl, dbName)
    const url = databaseUrl(pg.baseUrl, dbName)
    await step("migrations", () => runMigrations({ hostDir, databaseUrl: url, cli }))
    await seed(url)
    backend = await step("start", () => startBackend({ hostDir, databaseUrl: url, cli }))

    // The happy path of a storefront: a session, its authorization, the collection read back.
    const base = `${backend.url}/store/payment-collections/paycol_smoke`
    const post = (url, body) =>
      fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body ?? {}) })
    const created = await post(`${base}/sessions`, { provider_id: "manual" })
    const createdBody = await created.json().catch(() => null)
    const servedBy = created.headers.get("x-payment-collections-plugin")
    const sessions = createdBody?.payment_collection?.payment_sessions ?? []
    result.answer = `create ${created.status} (served by ${servedBy ?? "core"}, ${sessions.length} session(s))`
    if (!(created.status === 200 && servedBy && sessions.length === 1 && sessions[0].amount === COLLECTION_AMOUNT)) {
      throw new Error(`POST /store/payment-collections/:id/sessions answered ${result.answer}: ${JSON.stringify(createdBody)}`)
    }
    const authorized = await post(`${base}/sessions/${sessions[0].id}/authorize`)
    const authorizedBody = await authorized.json().catch(() => null)
    const read = await fetch(base)
    const collection = (await read.json().catch(() => null))?.payment_collection
    const readSessions = collection?.payment_sessions ?? []
    result.answer +=
      `, authorize ${authorized.status} (${authorizedBody?.payment_session?.status}), ` +
      `read ${read.status} (${collection?.status}, session ${readSessions.map((p) => p.status).join(",")})`
    if (
      !(authorized.status === 200 && authorizedBody.payment_session.status === "authorized") ||
      !(read.status === 200 && collection.status === "authorized") ||
      !(readSessions.length === 1 && readSessions[0].status === "authorized")
    ) {
      throw new Error(`the session could not be authorized and read back: ${result.answer}`)
    }
    result.outcome = "pass"
  } catch (err) {
    result.outcome = "fail"
    result.reason = err.message
    if (!backend && result.steps.start !== undefined) {
      // Did the plugin stop it, or does this host not boot at all?
      const url = databaseUrl(pg.baseUrl, dbName)
      const cli = path.join(hostDir, "node_modules", ".bin", "medusa")
      const plain = await startBackend({ hostDir, databaseUrl: url, cli, env: { SMOKE_WITHOUT_PLUGIN: "1" } }).catch(
        () => null
      )
      result.withoutPlugin = plain ? "boots" : "does not boot either"
      await plain?.stop().catch(() => {})
    }
  } finally {
    await backend?.stop().catch(() => {})
    await dropDatabase(pg.baseUrl, dbName).catch(() => {})
    fs.rmSync(hostDir, { recursive: true, force: true })
  }
  return result
}

function parseReleases(argv) {
  const i = argv.indexOf("--medusa")
  if (i === -1) return MATRIX
  const wanted = String(argv[i + 1] || "").split(",").filter(Boolean)
  const unknown = wanted.filter((v) => !MATRIX.some((r) => r.medusa === v))
  if (wanted.length === 0 || unknown.length) {
    throw new Error(`--medusa takes releases of the matrix: ${MATRIX.map((r) => r.medusa).join(", ")}`)
  }
  return MATRIX.filter((r) => wanted.includes(r.medusa))
}

async function main() {
  const releases = parseReleases(process.argv.slice(2))
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "pcp-smoke-"))
  const pg = await startPostgres()
  const results = []
  try {
    const tarball = await pack(work)
    console.log(`packed ${path.basename(tarball)}; peerDependencies @medusajs/medusa "${PEER_RANGE}"`)
    for (const release of releases) {
      const pinned = { ...release.dependencies, ...release.overrides }
      console.log(`\n@medusajs/medusa ${release.medusa} (${Object.entries(pinned).map(([n, v]) => `${n}@${v}`).join(", ")})`)
      const result = await tryRelease(release, { tarball, work, pg })
      const times = Object.entries(result.steps).map(([n, s]) => `${n} ${s} s`).join(", ")
      console.log(`  ${result.outcome === "pass" ? "passed" : "failed"} (${times})${result.answer ? `: ${result.answer}` : ""}`)
      if (result.withoutPlugin) console.log(`  the same host without the plugin ${result.withoutPlugin}`)
      if (result.reason) console.log(`  ${result.reason.split("\n").slice(0, 40).join("\n  ")}`)
      results.push(result)
    }
  } finally {
    await pg.stop().catch(() => {})
    fs.rmSync(work, { recursive: true, force: true })
  }

  console.log("\nmedusa   | expected | outcome")
  for (const r of results) console.log(`${r.medusa.padEnd(8)} | ${r.expected.padEnd(8)} | ${r.outcome}`)
  console.log(`SMOKE_JSON ${JSON.stringify(results.map(({ reason, ...r }) => ({ ...r, reason: reason?.split("\n")[0] })))}`)
  const disagreeing = results.filter((r) => r.outcome !== r.expected)
  if (disagreeing.length) {
    for (const r of disagreeing) {
      console.error(
        `@medusajs/medusa ${r.medusa} ${r.outcome === "pass" ? "passes but is outside" : "fails but is inside"} ` +
          `peerDependencies "${PEER_RANGE}"`
      )
    }
    process.exit(1)
  }
  console.log("smoke test passed: every release inside the peer range installs, migrates and serves the plugin's routes")
}

main().catch((err) => {
  console.error(err.stack || err)
  process.exit(1)
})
