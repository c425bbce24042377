"use strict"

// Preloaded into a Medusa backend by `scripts/bench.js --profile <case>`
// (NODE_OPTIONS="--require <this file>", CPU_PROFILER_PORT=<port>). Runs V8's
// sampling CPU profiler of the backend's main thread on demand, so a profile
// covers the measured load only (not the boot), and serves it on
// 127.0.0.1:<port>:
//   POST /start -> starts profiling (sampling interval CPU_PROFILER_INTERVAL_US, default 500 µs)
//   POST /stop  -> stops it and answers the profile (.cpuprofile JSON, as DevTools reads it)
// Without CPU_PROFILER_PORT it does nothing.

const http = require("http")
const inspector = require("inspector")

const PORT = Number(process.env.CPU_PROFILER_PORT)
const INTERVAL_US = Number(process.env.CPU_PROFILER_INTERVAL_US) || 500

let session = null

function post(method, params = {}) {
  return new Promise((resolve, reject) =>
    session.post(method, params, (err, result) => (err ? reject(err) : resolve(result)))
  )
}

async function start() {
  if (session) throw new Error("already profiling")
  session = new inspector.Session()
  session.connect()
  await post("Profiler.enable")
  await post("Profiler.setSamplingInterval", { interval: INTERVAL_US })
  await post("Profiler.start")
}

async function stop() {
  if (!session) throw new Error("not profiling")
  try {
    const { profile } = await post("Profiler.stop")
    return profile
  } finally {
    session.disconnect()
    session = null
  }
}

function answer(res, status, body) {
  res.writeHead(status, { "content-type": "application/json" })
  res.end(JSON.stringify(body))
}

function handle(req, res) {
  const action = req.method === "POST" && { "/start": start, "/stop": stop }[req.url]
  if (!action) return answer(res, 404, { error: "not found" })
  action().then(
    (result) => answer(res, 200, result === undefined ? { profiling: true } : result),
    (err) => answer(res, 409, { error: err.message })
  )
}

if (Number.isInteger(PORT) && PORT > 0) {
  const server = http.createServer(handle)
  server.on("error", (err) => process.stderr.write(`[cpu-profiler] cannot listen on ${PORT}: ${err.message}\n`))
  server.listen(PORT, "127.0.0.1")
  server.unref()
}
