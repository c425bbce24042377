"use strict"

// Redis for the tests, as PostgreSQL is: the one named by PCP_TEST_REDIS_URL
// when set (.ci/run starts Debian's redis-server and sets it), else a
// redis-server of the caller's own on a free loopback port, with nothing
// persisted, stopped afterwards.

const fs = require("fs")
const net = require("net")
const os = require("os")
const path = require("path")
const { spawn } = require("child_process")
const { freePort } = require("./net")

const EXTRA_DIRS = ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"]
const READY_TIMEOUT_MS = 15_000

/** The redis-server binary, or null when it is not installed. */
function findRedisServer() {
  const dirs = [...(process.env.PATH || "").split(path.delimiter).filter(Boolean), ...EXTRA_DIRS]
  for (const dir of dirs) {
    const candidate = path.join(dir, "redis-server")
    try {
      fs.accessSync(candidate, fs.constants.X_OK)
      return candidate
    } catch {
      // not here
    }
  }
  return null
}

/** Whether a Redis answers PING at `url` (redis://host:port). */
function ping(url, timeoutMs = 1000) {
  const { hostname, port } = new URL(url)
  return new Promise((resolve) => {
    const socket = net.connect({ host: hostname, port: Number(port || 6379) })
    let answer = ""
    const done = (ok) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.on("error", () => done(false))
    socket.on("connect", () => socket.write("PING\r\n"))
    socket.on("data", (chunk) => {
      answer += chunk.toString("utf8")
      if (answer.includes("\r\n")) done(answer.startsWith("+PONG"))
    })
  })
}

/**
 * A Redis for a spec: `{ url, own, stop() }`. PCP_TEST_REDIS_URL when set
 * (stop() leaves it running); else `redis-server --port <free> --save ""
 * --appendonly no` when the binary is installed; else an error saying how to
 * get one.
 */
async function startRedis() {
  const given = process.env.PCP_TEST_REDIS_URL
  if (given) {
    if (!(await ping(given))) throw new Error(`PCP_TEST_REDIS_URL=${given} does not answer PING`)
    return { url: given, own: false, stop: async () => {} }
  }
  const binary = findRedisServer()
  if (!binary) {
    throw new Error(
      "this spec needs Redis: set PCP_TEST_REDIS_URL=redis://host:port, or install redis-server (Debian: apt-get install redis-server) for the tests to start one"
    )
  }
  const port = await freePort()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pcp-redis-"))
  const child = spawn(
    binary,
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir],
    { stdio: ["ignore", "pipe", "pipe"] }
  )
  let output = ""
  const collect = (chunk) => {
    output = (output + chunk.toString("utf8")).slice(-4000)
  }
  child.stdout.on("data", collect)
  child.stderr.on("data", collect)
  const exited = new Promise((resolve) => child.once("exit", resolve))
  const url = `redis://127.0.0.1:${port}`
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM")
      let timer
      await Promise.race([exited, new Promise((resolve) => (timer = setTimeout(resolve, 5000)))])
      clearTimeout(timer)
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
    }
    fs.rmSync(dir, { recursive: true, force: true })
  }
  const deadline = Date.now() + READY_TIMEOUT_MS
  for (;;) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}:\n${output}`)
    if (await ping(url)) return { url, own: true, pid: child.pid, stop }
    if (Date.now() > deadline) {
      await stop()
      throw new Error(`redis-server did not answer on ${url} within ${READY_TIMEOUT_MS} ms:\n${output}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

module.exports = { startRedis, findRedisServer, ping }
