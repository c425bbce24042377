"use strict"

const fs = require("fs")
const http = require("http")
const path = require("path")
const { spawn } = require("child_process")
const { freePort } = require("./net")
const { repoEnv } = require("./repo-env")

const REPO_ROOT = path.resolve(__dirname, "../..")
const MEDUSA_CLI = path.join(REPO_ROOT, "node_modules", ".bin", "medusa")
const HEALTH_TIMEOUT_MS = 120_000
const KILL_AFTER_MS = 10_000
const TAIL_LINES = 200

// The environment of a Medusa CLI: the repository's (repo-env.js: its private
// config home, whatever the caller's environment says) with the backend's
// settings. Jest sets NODE_ENV=test, and Medusa 1.20 then swaps in its own
// mocks (core subscribers, services, the data source): a real backend must
// never see "test".
function childEnv(databaseUrl, env = {}) {
  const merged = repoEnv({ LOG_LEVEL: "error", ...env, DATABASE_URL: databaseUrl })
  if (!merged.NODE_ENV || merged.NODE_ENV === "test") merged.NODE_ENV = "development"
  return merged
}

// A backend still running when this process exits (a crash, a forgotten stop())
// is killed rather than left behind.
const running = new Set()
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL")
})

// Without a package.json naming @medusajs/medusa in the host dir, medusa-cli prints
// the command's help before running it; that block is left out of the tail.
const CLI_HELP_START = /^medusa \w/
const CLI_HELP_END = /^\s+-v, --version/

class OutputTail {
  constructor(limit = TAIL_LINES, onLine = () => {}) {
    this.limit = limit
    this.onLine = onLine
    this.lines = []
    this.partial = ""
    this.help = "maybe"
  }

  push(chunk) {
    const parts = (this.partial + chunk.toString("utf8")).split("\n")
    this.partial = parts.pop()
    for (const line of parts) {
      if (this.help === "maybe") this.help = CLI_HELP_START.test(line) ? "in" : "done"
      if (this.help === "in") {
        if (CLI_HELP_END.test(line)) this.help = "done"
        continue
      }
      this.onLine(line)
      this.lines.push(line)
      if (this.lines.length > this.limit) this.lines.shift()
    }
  }

  text() {
    return [...this.lines, this.partial].filter(Boolean).join("\n")
  }
}

// `medusa migrations run` reports a failure by printing the error and still
// exiting 0 (the CLI's handler swallows it), so the output is checked too.
const MIGRATION_FAILURE = /^(\w*Error\b|query failed:)/

function runMigrations({ hostDir, databaseUrl, env, cli = MEDUSA_CLI } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cli, ["migrations", "run"], {
      cwd: hostDir,
      env: childEnv(databaseUrl, env),
      stdio: ["ignore", "pipe", "pipe"],
    })
    running.add(child)
    child.on("exit", () => running.delete(child))
    let failure = null
    const tail = new OutputTail(400, (line) => {
      if (!failure && MIGRATION_FAILURE.test(line)) failure = line
    })
    const onData = (chunk) => tail.push(chunk)
    child.stdout.on("data", onData)
    child.stderr.on("data", onData)
    child.on("error", reject)
    child.on("close", (code, signal) => {
      tail.push("\n")
      if (code === 0 && !failure) return resolve()
      const reason = failure ? `reported "${failure}"` : `exited with ${code ?? signal}`
      reject(new Error(`medusa migrations run ${reason}\n${tail.text()}`))
    })
  })
}

// Each poll on a connection of its own, closed after the answer: a keep-alive
// socket left in this process's fetch pool (jest runs the tests in the process
// that started the backend) can be picked for a test's first request just as
// the backend closes it for idleness ("other side closed").
function getHealth(url) {
  return new Promise((resolve) => {
    const req = http.get(`${url}/health`, { agent: false, headers: { connection: "close" }, timeout: 2000 }, (res) => {
      res.resume()
      res.on("end", () => resolve(res.statusCode))
      res.on("error", () => resolve(null))
    })
    req.on("timeout", () => req.destroy())
    req.on("error", () => resolve(null))
  })
}

function waitForExit(child, ms) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true)
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms)
    child.once("exit", () => {
      clearTimeout(timer)
      resolve(true)
    })
  })
}

async function stopChild(child) {
  if (child.exitCode !== null || child.signalCode !== null) return
  child.kill("SIGTERM")
  if (await waitForExit(child, KILL_AFTER_MS)) return
  child.kill("SIGKILL")
  await waitForExit(child, KILL_AFTER_MS)
}

async function startOnce({ hostDir, databaseUrl, port, env, logFile, cli }) {
  const child = spawn(cli, ["start", "--port", String(port)], {
    cwd: hostDir,
    env: childEnv(databaseUrl, { ...env, PORT: String(port) }),
    stdio: ["ignore", "pipe", "pipe"],
  })
  running.add(child)
  child.on("exit", () => running.delete(child))
  const tail = new OutputTail()
  const log = logFile ? fs.createWriteStream(logFile, { flags: "a" }) : null
  let portTaken = false
  const onData = (chunk) => {
    tail.push(chunk)
    if (log) log.write(chunk)
    // medusa-cli swallows the listen error and keeps the process alive.
    if (/EADDRINUSE/.test(chunk.toString("utf8"))) portTaken = true
  }
  child.stdout.on("data", onData)
  child.stderr.on("data", onData)
  child.on("close", () => log && log.end())
  let spawnError = null
  child.on("error", (err) => (spawnError = err))

  const url = `http://127.0.0.1:${port}`
  const stop = () => stopChild(child)
  const describe = (why) =>
    new Error(`medusa start (${hostDir}, port ${port}) ${why}\n${tail.text()}`)
  const deadline = Date.now() + HEALTH_TIMEOUT_MS

  for (;;) {
    if (spawnError) throw describe(`could not spawn: ${spawnError.message}`)
    if (child.exitCode !== null || child.signalCode !== null) {
      throw describe(`exited early (${child.exitCode ?? child.signalCode})`)
    }
    if (portTaken) {
      await stop()
      const err = describe("could not listen: port in use")
      err.portTaken = true
      throw err
    }
    if ((await getHealth(url)) === 200) break
    if (Date.now() > deadline) {
      await stop()
      throw describe(`did not answer GET /health with 200 within ${HEALTH_TIMEOUT_MS / 1000} s`)
    }
    await new Promise((resolve) => setTimeout(resolve, 250))
  }

  return { url, port, pid: child.pid, stop, output: () => tail.text() }
}

async function startBackend({ hostDir, databaseUrl, port = 0, env = {}, logFile, cli = MEDUSA_CLI } = {}) {
  const attempts = port === 0 ? 3 : 1
  for (let attempt = 1; ; attempt++) {
    const chosen = port === 0 ? await freePort() : port
    try {
      return await startOnce({ hostDir, databaseUrl, port: chosen, env, logFile, cli })
    } catch (err) {
      if (!err.portTaken || attempt >= attempts) throw err
    }
  }
}

module.exports = { runMigrations, startBackend, childEnv, REPO_ROOT, MEDUSA_CLI }
