"use strict"

// Preloaded into a Medusa backend by scripts/bench.js
// (NODE_OPTIONS="--require <this file>", SQL_COUNTER_PORT=<port>). Counts every
// statement sent through pg's Client#query (Pool#query, TypeORM and raw
// manager.query all end there, BEGIN/COMMIT included) and serves the count on
// 127.0.0.1:<port>:
//   GET  /count    -> { count, copies: { <pg client.js path>: count }, cpuMicros, rss }
//                     (cpuMicros: the process's user + system CPU time so far, all threads;
//                     rss: its resident set size in bytes)
//   POST /capture  -> starts recording statements (drops earlier ones)
//   GET  /captured -> { statements: [{ text, values, at }] } (values: the statement's parameters,
//                     as sent; at: Date.now()) and stops recording
//   POST /gc       -> runs full garbage collections, then { rss, heapUsed, heapCommitted, spaces } (bytes;
//                     spaces: V8's committed size of each heap space): memory
//                     that the load left in use, not what V8 had not collected yet
// Without SQL_COUNTER_PORT it does nothing, so an inherited NODE_OPTIONS is harmless.

const http = require("http")
const Module = require("module")
const path = require("path")
const v8 = require("v8")
const vm = require("vm")

const REPO_ROOT = path.resolve(__dirname, "../..")
const PORT = Number(process.env.SQL_COUNTER_PORT)
const INSTRUMENTED = Symbol.for("pcp.sqlCounter")

const state = { count: 0, copies: {}, captured: null }

function statementText(config) {
  if (typeof config === "string") return config
  return config && typeof config.text === "string" ? config.text : String(config)
}

function statementValues(config, values) {
  if (Array.isArray(values)) return values
  return config && typeof config === "object" && Array.isArray(config.values) ? config.values : []
}

function instrument(Client, file) {
  if (Client.prototype[INSTRUMENTED]) return
  Client.prototype[INSTRUMENTED] = true
  state.copies[file] = 0
  const query = Client.prototype.query
  Client.prototype.query = function countedQuery(config, values) {
    state.count += 1
    state.copies[file] += 1
    if (state.captured) state.captured.push({ text: statementText(config), values: statementValues(config, values), at: Date.now() })
    return query.apply(this, arguments)
  }
}

// The root copy is the one Medusa and TypeORM use; other copies (e.g. under
// @mikro-orm) are counted too, from whenever something first requires them.
function instrumentEveryPgCopy() {
  const rootEntry = require.resolve("pg", { paths: [REPO_ROOT] })
  instrument(require(rootEntry).Client, rootEntry)
  const load = Module._load
  Module._load = function loadAndInstrument(request, parent) {
    const exports = load.apply(this, arguments)
    if (request === "pg" && exports && typeof exports.Client === "function") {
      instrument(exports.Client, Module._resolveFilename(request, parent))
    }
    return exports
  }
}

function sendJson(res, body) {
  res.writeHead(200, { "content-type": "application/json" })
  res.end(JSON.stringify(body))
}

function handle(req, res) {
  if (req.method === "GET" && req.url === "/count") {
    const cpu = process.cpuUsage()
    return sendJson(res, {
      count: state.count,
      copies: state.copies,
      cpuMicros: cpu.user + cpu.system,
      rss: process.memoryUsage().rss,
    })
  }
  if (req.method === "POST" && req.url === "/gc") {
    return collectGarbage().then(() => {
      const { rss, heapUsed } = process.memoryUsage()
      const spaces = Object.fromEntries(v8.getHeapSpaceStatistics().map((s) => [s.space_name, s.space_size]))
      sendJson(res, { rss, heapUsed, heapCommitted: v8.getHeapStatistics().total_heap_size, spaces })
    })
  }
  if (req.method === "POST" && req.url === "/capture") {
    state.captured = []
    return sendJson(res, { capturing: true })
  }
  if (req.method === "GET" && req.url === "/captured") {
    const statements = state.captured || []
    state.captured = null
    return sendJson(res, { statements })
  }
  res.writeHead(404).end()
}

// A gc function for this file only: the backend gets no global `gc`.
let gc = null
async function collectGarbage() {
  if (!gc) {
    v8.setFlagsFromString("--expose-gc")
    gc = vm.runInNewContext("gc")
  }
  // Twice, a turn apart: finalizers of the first free more for the second.
  gc()
  await new Promise((resolve) => setImmediate(resolve))
  gc()
  // V8 hands freed pages back to the system on a background thread.
  await new Promise((resolve) => setTimeout(resolve, 2000))
}

function serve() {
  const server = http.createServer(handle)
  server.on("error", (err) => {
    process.stderr.write(`[sql-counter] cannot listen on ${PORT}: ${err.message}\n`)
  })
  server.listen(PORT, "127.0.0.1")
  server.unref()
}

if (Number.isInteger(PORT) && PORT > 0) {
  instrumentEveryPgCopy()
  serve()
}
