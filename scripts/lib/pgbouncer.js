"use strict"

// PgBouncer in transaction pooling mode in front of a PostgreSQL server, as a
// child process with a generated configuration: the pooler a production
// deployment of several backends typically puts between them and PostgreSQL.
// In this mode a server connection belongs to a client only for one
// transaction, so anything that outlives a transaction on a connection
// (session SET, advisory locks, named prepared statements, LISTEN) breaks.

const fs = require("fs")
const os = require("os")
const path = require("path")
const { spawn } = require("child_process")
const { Client } = require("pg")
const { freePort } = require("./net")
const { repoEnv } = require("./repo-env")

// Debian installs it in /usr/sbin, which is not on every user's PATH.
const EXTRA_DIRS = ["/usr/sbin", "/usr/local/sbin", "/usr/local/bin"]
const READY_TIMEOUT_MS = 15_000

/** The pgbouncer binary, or null when it is not installed. */
function findPgbouncer() {
  const dirs = [...(process.env.PATH || "").split(path.delimiter).filter(Boolean), ...EXTRA_DIRS]
  for (const dir of dirs) {
    const candidate = path.join(dir, "pgbouncer")
    try {
      fs.accessSync(candidate, fs.constants.X_OK)
      return candidate
    } catch {
      // not here
    }
  }
  return null
}

function isRoot() {
  return typeof process.getuid === "function" && process.getuid() === 0
}

async function canConnect(url) {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 2000 })
  try {
    await client.connect()
    await client.query("SELECT 1")
    return true
  } catch {
    return false
  } finally {
    await client.end().catch(() => {})
  }
}

/**
 * Starts PgBouncer for every database of the server at `serverUrl`
 * (postgres://user:password@host:port). Resolves with `baseUrl`, the same
 * server reached through PgBouncer, and `stop()`.
 *
 * poolSize: server connections per database and user. In transaction mode a
 * transaction holds one for as long as it runs, so it bounds how many
 * transactions run at once; clients beyond it wait in PgBouncer.
 */
async function startPgbouncer({ serverUrl, poolSize = 40, binary = findPgbouncer() }) {
  if (!binary) throw new Error("pgbouncer is not installed (Debian: apt-get install pgbouncer)")
  const server = new URL(serverUrl)
  const user = decodeURIComponent(server.username)
  const password = decodeURIComponent(server.password)
  const port = await freePort()

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pcp-pgbouncer-"))
  // As root PgBouncer must switch to another user, who has to read these.
  fs.chmodSync(dir, 0o755)
  const quote = (s) => `"${String(s).replace(/"/g, '""')}"`
  fs.writeFileSync(path.join(dir, "userlist.txt"), `${quote(user)} ${quote(password)}\n`, { mode: 0o644 })
  const ini = [
    "[databases]",
    `* = host=${server.hostname} port=${server.port || 5432}`,
    "",
    "[pgbouncer]",
    "listen_addr = 127.0.0.1",
    `listen_port = ${port}`,
    "unix_socket_dir =",
    // A server without a password (trust) gets clients without one.
    `auth_type = ${password ? "scram-sha-256" : "trust"}`,
    `auth_file = ${path.join(dir, "userlist.txt")}`,
    "pool_mode = transaction",
    `default_pool_size = ${poolSize}`,
    // Above what the plugin lets a locked transaction sit idle while a provider
    // answers (provider_timeout_ms + 2 × lock_timeout_ms + 5 s: 55 s with the
    // defaults), as the README tells a merchant to set it; a shorter one would
    // end a transaction, and its row lock, in the middle of a provider call.
    "idle_transaction_timeout = 60",
    "max_client_conn = 1000",
    // node-postgres sends none of these today; a driver that does must not be refused.
    "ignore_startup_parameters = extra_float_digits,options",
    // The admin console (database "pgbouncer"), for SHOW CLIENTS.
    `admin_users = ${user}`,
    "log_connections = 0",
    "log_disconnections = 0",
    "",
  ].join("\n")
  const iniFile = path.join(dir, "pgbouncer.ini")
  fs.writeFileSync(iniFile, ini, { mode: 0o644 })

  const args = isRoot() ? ["-u", "nobody", iniFile] : [iniFile]
  const child = spawn(binary, args, { env: repoEnv(), stdio: ["ignore", "pipe", "pipe"] })
  let output = ""
  const keep = (chunk) => {
    output = (output + chunk.toString("utf8")).slice(-8000)
  }
  child.stdout.on("data", keep)
  child.stderr.on("data", keep)
  let spawnError = null
  child.on("error", (err) => (spawnError = err))

  const baseUrl = `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${port}`
  let stopped = false
  const stop = async () => {
    if (stopped) return
    stopped = true
    if (child.exitCode === null && child.signalCode === null) {
      let timer
      const exited = new Promise((resolve) => child.once("exit", resolve))
      child.kill("SIGINT") // immediate shutdown
      await Promise.race([exited, new Promise((resolve) => (timer = setTimeout(resolve, 5000)))])
      clearTimeout(timer)
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
    }
    fs.rmSync(dir, { recursive: true, force: true })
  }

  const deadline = Date.now() + READY_TIMEOUT_MS
  const probeUrl = `${baseUrl}/${encodeURIComponent(server.pathname.slice(1) || "postgres")}`
  for (;;) {
    if (spawnError || child.exitCode !== null || child.signalCode !== null) {
      await stop()
      throw new Error(`pgbouncer did not start: ${spawnError ? spawnError.message : `exited ${child.exitCode ?? child.signalCode}`}\n${output}`)
    }
    if (await canConnect(probeUrl)) break
    if (Date.now() > deadline) {
      await stop()
      throw new Error(`pgbouncer did not accept connections within ${READY_TIMEOUT_MS / 1000} s\n${output}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }

  /** How many client connections PgBouncer holds for `database` (its admin console's SHOW CLIENTS). */
  const clientCount = async (database) => {
    const admin = new Client({ connectionString: `${baseUrl}/pgbouncer` })
    await admin.connect()
    try {
      const { rows } = await admin.query("SHOW CLIENTS")
      return rows.filter((row) => row.database === database).length
    } finally {
      await admin.end()
    }
  }

  return { baseUrl, port, pid: child.pid, stop, clientCount, output: () => output }
}

module.exports = { findPgbouncer, startPgbouncer }
