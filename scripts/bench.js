#!/usr/bin/env node
"use strict"

// `npm run bench`: the same load against core 1.20.11 alone and against the
// same host with this plugin. Both backends run at once on one database with
// identical seed data (each with its own SQL counter); each case is warmed up on
// both, then measured in rounds that alternate which backend goes first (core,
// plugin | plugin, core | ...), one backend loaded at a time while the other
// idles, so drift (JIT, table growth, autovacuum, caches, other load) lands on
// both sides. Prints req/s, latency, non-2xx and SQL statements per request,
// the spread between rounds, the plugin/core ratios and which targets are met.
// Options: --duration <s> (or BENCH_DURATION, default 10 s per case and
// backend, split into the rounds), --rounds <n> (or BENCH_ROUNDS, default 3),
// --warmup <s> (per case and backend before the rounds, default 3),
// --show-sql[=full] (print the statements of one request of each kind),
// --profile <case> [--profile-dir <dir>] (instead of the bench: CPU-profile
// both backends under --duration s of that case, one after the other, and
// compare where the time goes; --profile-after <id,id> first loads both
// backends with those cases, --duration s each, to profile the state they
// leave behind), --cases <id,id> (only these cases; the
// default is all), --scale [--scale-factor <f>] (afterwards, the plugin on an
// empty database against the same on a busy merchant's tables, f times the
// full size: scripts/lib/bench-scale.js). Uses DATABASE_URL's server when set,
// else embedded PostgreSQL.

require("./lib/repo-env").applyRepoEnv()
const crypto = require("crypto")
const fs = require("fs")
const os = require("os")
const path = require("path")
const autocannon = require("autocannon")
const { Client } = require("pg")
const { startPostgres, createDatabase, dropDatabase, databaseUrl } = require("./lib/postgres")
const { runMigrations, startBackend, REPO_ROOT } = require("./lib/medusa-host")
const { startFakePsp } = require("./lib/fake-psp")
const { freePort } = require("./lib/net")
const { httpJson, expectOk } = require("./lib/http-json")
const seed = require("./lib/bench-seed")
const report = require("./lib/bench-report")
const profiling = require("./lib/bench-profile")
const { runScale } = require("./lib/bench-scale")
const scaleReport = require("./lib/bench-scale-report")

const HOST_DIR = path.join(REPO_ROOT, "integration-tests", "host")
const SQL_COUNTER = path.join(__dirname, "lib", "sql-counter.js")
const CPU_PROFILER = path.join(__dirname, "lib", "cpu-profiler.js")
const PLUGIN_HEADER = "x-payment-collections-plugin"
const CONNECTIONS = 10
// Before the first case (each backend, GET). Before each case, each backend
// runs the case itself for --warmup s (default below): V8 is still speeding a
// path up during its first seconds of load.
const WARMUP_SECONDS = 1
const CASE_WARMUP_SECONDS = 3
// autocannon ends a run at its first sample tick after `duration`: ticks every
// 100 ms keep short rounds close to their nominal length (the real length is
// measured and used).
const SAMPLE_INTERVAL_MS = 100
const SLOW_PROVIDER_MS = 200
// Fresh collections per second of a case that uses each collection once; well
// above what 10 connections reach here. Running out is reported, not hidden.
const FRESH_PER_SECOND = 800
const SLOW_FRESH_PER_SECOND = Math.ceil((CONNECTIONS * 1000) / SLOW_PROVIDER_MS) * 2
const SETTLE_POLL_MS = 250
const SETTLE_TIMEOUT_MS = 30_000

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const log = (message) => process.stderr.write(`[bench] ${message}\n`)

function usageError(message) {
  return Object.assign(new Error(message), { usage: true })
}

const CASE_IDS = ["update", "create", "get", "authorize", "create_slow", "host_products", "host_regions", "host_carts"]
const USAGE = "options: --duration <s>, --rounds <n>, --warmup <s>, --show-sql[=full], --profile <case> [--profile-dir <dir>] [--profile-after <id,id>], --cases <id,id>, --scale [--scale-factor <f>]"

function parseArgs(argv, env) {
  const options = {
    duration: Number(env.BENCH_DURATION || 10),
    rounds: Number(env.BENCH_ROUNDS || 3),
    warmup: CASE_WARMUP_SECONDS,
    showSql: null,
    profile: null,
    profileDir: null,
    profileAfter: [],
    cases: CASE_IDS,
    scale: false,
    scaleFactor: 1,
  }
  const valued = { "--duration": "duration", "--rounds": "rounds", "--warmup": "warmup", "--profile": "profile", "--profile-dir": "profileDir", "--profile-after": "profileAfter", "--cases": "cases", "--scale-factor": "scaleFactor" }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    const [flag, inline] = arg.startsWith("--") && arg.includes("=") ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)] : [arg, undefined]
    if (valued[flag]) {
      const value = inline !== undefined ? inline : argv[++i]
      if (value === undefined) throw usageError(`${flag} needs a value (${USAGE})`)
      if (["duration", "rounds", "warmup", "scaleFactor"].includes(valued[flag])) options[valued[flag]] = Number(value)
      else if (flag === "--cases" || flag === "--profile-after") options[valued[flag]] = value.split(",").filter(Boolean)
      else options[valued[flag]] = value
    } else if (arg === "--scale") options.scale = true
    else if (arg === "--show-sql") options.showSql = "summary"
    else if (arg === "--show-sql=full") options.showSql = "full"
    else throw usageError(`unknown argument ${arg} (${USAGE})`)
  }
  if (!(options.duration > 0)) throw usageError("--duration must be a number of seconds > 0")
  if (!(Number.isInteger(options.rounds) && options.rounds >= 1)) throw usageError("--rounds must be an integer >= 1")
  if (!(options.warmup >= 0)) throw usageError("--warmup must be a number of seconds >= 0")
  if (!(options.scaleFactor > 0 && options.scaleFactor <= 1)) throw usageError("--scale-factor must be a number > 0 and <= 1")
  if (options.scale && options.profile !== null) throw usageError("--scale and --profile do not go together")
  if (options.profile !== null && !CASE_IDS.includes(options.profile)) {
    throw usageError(`--profile takes a case: ${CASE_IDS.join(", ")}`)
  }
  if (options.profileAfter.some((id) => !CASE_IDS.includes(id))) {
    throw usageError(`--profile-after takes a comma-separated list of: ${CASE_IDS.join(", ")}`)
  }
  const unknownCase = options.cases.find((id) => !CASE_IDS.includes(id))
  if (unknownCase !== undefined || options.cases.length === 0) {
    throw usageError(`--cases takes a comma-separated list of: ${CASE_IDS.join(", ")}`)
  }
  return options
}

// ------------------------------------------------------------- SQL counter

function sqlCounterAt(url) {
  return {
    read: async () => (await expectOk("sql-counter", "GET", `${url}/count`)).body,
    startCapture: () => expectOk("sql-counter", "POST", `${url}/capture`),
    captured: async () => (await expectOk("sql-counter", "GET", `${url}/captured`)).body.statements,
    collectGarbage: async () => (await expectOk("sql-counter", "POST", `${url}/gc`)).body,
  }
}

// Requests cut off when a run ends are still finished by the server: wait
// until the count stops moving before reading it. Answers the count and the
// backend's CPU time (µs) at that point.
async function settledReading(counter) {
  const deadline = Date.now() + SETTLE_TIMEOUT_MS
  let last = await counter.read()
  for (;;) {
    await sleep(SETTLE_POLL_MS)
    const now = await counter.read()
    if (now.count === last.count || Date.now() > deadline) return now
    last = now
  }
}

async function settledCount(counter) {
  return (await settledReading(counter)).count
}

// ---------------------------------------------------------------- backends

function preloadOptions(existing, preloads) {
  return [existing, ...preloads.map((file) => `--require ${JSON.stringify(file)}`)].filter(Boolean).join(" ")
}

function profilerAt(url) {
  return {
    start: () => expectOk("cpu-profiler", "POST", `${url}/start`),
    stop: async () => (await expectOk("cpu-profiler", "POST", `${url}/stop`)).body,
  }
}

async function bootBackend(ctx, name, dbUrl, { profile = false, env = {} } = {}) {
  const counterPort = await freePort()
  const profilerPort = profile ? await freePort() : null
  log(`starting ${name} backend`)
  const backend = await startBackend({
    hostDir: HOST_DIR,
    databaseUrl: dbUrl,
    env: {
      HOST_WITHOUT_PLUGIN: name === "core" ? "1" : "0",
      NODE_OPTIONS: preloadOptions(process.env.NODE_OPTIONS, profile ? [SQL_COUNTER, CPU_PROFILER] : [SQL_COUNTER]),
      SQL_COUNTER_PORT: String(counterPort),
      // The host's test-pay provider (create_slow) calls this run's fake PSP.
      TEST_PAY_PSP_URL: ctx.psp.url,
      ...(profile ? { CPU_PROFILER_PORT: String(profilerPort) } : {}),
      ...env,
    },
  })
  ctx.backends.push(backend)
  const counter = sqlCounterAt(`http://127.0.0.1:${counterPort}`)
  await counter.read().catch((err) => {
    throw new Error(`${name} backend: the SQL counter does not answer on port ${counterPort} (${err.message})\n${backend.output()}`)
  })
  const profiler = profile ? profilerAt(`http://127.0.0.1:${profilerPort}`) : null
  return { name, url: backend.url, dbUrl, counter, profiler }
}

// A production database's autovacuum keeps the planner's statistics within
// about a tenth of each table (autovacuum_analyze_scale_factor). The bench's
// seed and each case's warm-up grow tables many times over within a minute,
// faster than autovacuum wakes, and plans made for tables a tenth of their
// size (a hash join over a sequential scan instead of an index lookup) cost
// both backends on every statement. Each case is measured with statistics
// taken after its warm-up, as a busy database would have them.
async function analyzeDatabases(backends) {
  for (const url of new Set(backends.map((b) => b.dbUrl))) {
    const db = new Client({ connectionString: url })
    await db.connect()
    try {
      await db.query("ANALYZE")
    } finally {
      await db.end()
    }
  }
}

// Statements through a pg copy other than the root one are counted as well;
// say where they came from so nobody has to guess.
async function reportOtherPgCopies(backend) {
  const { copies } = await backend.counter.read()
  const rootEntry = require.resolve("pg", { paths: [REPO_ROOT] })
  for (const [file, count] of Object.entries(copies)) {
    if (file !== rootEntry && count > 0) log(`${backend.name}: ${count} statements went through ${file}`)
  }
}

async function stopBackends(ctx) {
  const backends = ctx.backends.splice(0)
  const stopped = await Promise.allSettled(backends.map((backend) => backend.stop()))
  const failed = stopped.find((s) => s.status === "rejected")
  if (failed) throw failed.reason
}

// The plugin marks its answers; this proves which code served the run (every
// backend but core has the plugin, the scale ones too).
function assertServedBy(backend, res) {
  const byPlugin = res.headers.has(PLUGIN_HEADER)
  if (byPlugin !== (backend.name !== "core")) {
    throw new Error(`${backend.name} backend: answer ${byPlugin ? "has" : "lacks"} ${PLUGIN_HEADER}`)
  }
}

// ---------------------------------------------------------------- requests

const paths = {
  collection: (id) => `/store/payment-collections/${id}`,
  sessions: (id) => `/store/payment-collections/${id}/sessions`,
  authorize: (id) => `/store/payment-collections/${id}/sessions/batch/authorize`,
}

const requestOf = {
  session: (collectionId, provider = "manual") => ({
    method: "POST",
    path: paths.sessions(collectionId),
    body: { provider_id: provider },
  }),
  get: (collectionId) => ({ method: "GET", path: paths.collection(collectionId) }),
  authorize: ({ collectionId, sessionId }) => ({
    method: "POST",
    path: paths.authorize(collectionId),
    body: { session_ids: [sessionId] },
  }),
}

async function send(backend, request) {
  const res = await httpJson(request.method, backend.url + request.path, { body: request.body })
  if (res.status !== 200) {
    throw new Error(`${backend.name}: ${request.method} ${request.path} answered ${res.status}: ${res.text.slice(0, 300)}`)
  }
  assertServedBy(backend, res)
  return res
}

// Statements issued after the answer arrived (e.g. the event bus's staged-job
// poller, every 3 s) are kept but marked, and left out of the request's count.
async function captureStatements(backend, kind, request) {
  await backend.counter.startCapture()
  await send(backend, request)
  const answeredAt = Date.now()
  await settledCount(backend.counter)
  const statements = (await backend.counter.captured()).map(({ text, at }) => ({
    text,
    afterResponse: at > answeredAt,
  }))
  return { kind, backend: backend.name, statements }
}

/**
 * The statements of one request of each kind, each after an uncaptured request
 * of the same kind (first-call work such as lazy loading is left out). Also
 * makes the case-1 collection's session, so that case re-posts it.
 */
async function captureEachKind(backend, data) {
  const { probes } = data
  await send(backend, requestOf.session(probes.create[0]))
  const create = await captureStatements(backend, "create", requestOf.session(probes.create[1]))
  await send(backend, requestOf.session(data.update))
  await send(backend, requestOf.session(data.update))
  const update = await captureStatements(backend, "update", requestOf.session(data.update))
  await send(backend, requestOf.get(data.get))
  const get = await captureStatements(backend, "get", requestOf.get(data.get))
  await send(backend, requestOf.authorize(probes.authorize[0]))
  const authorize = await captureStatements(backend, "authorize", requestOf.authorize(probes.authorize[1]))
  return [create, update, get, authorize]
}

// -------------------------------------------------------------------- load

function encode(request) {
  const encoded = { method: request.method, path: request.path }
  if (request.body !== undefined) {
    encoded.body = JSON.stringify(request.body)
    encoded.headers = { "content-type": "application/json" }
  }
  return encoded
}

/** A load spec sending `toRequest(item)` for each item once, in order. */
function rotating(items, toRequest) {
  let next = 0
  const spec = {
    exhausted: false,
    request: encode(toRequest(items[0])),
    setupRequest: (req) => {
      if (next >= items.length) {
        spec.exhausted = true
        next = 0
      }
      return { ...req, ...encode(toRequest(items[next++])) }
    },
  }
  return spec
}

function fixedLoad(request) {
  return { exhausted: false, request: encode(request) }
}

/**
 * The timed cases. `load(data)` makes a load spec from one backend's seed data;
 * each backend gets one spec per case, shared by its warm-up and all its
 * rounds, so a fresh collection is used once across all of them (and the two
 * backends never share one).
 */
function benchCases(ctx) {
  return [
    { id: "update", title: "POST /:id/sessions, one collection re-posted (update path)", load: (data) => fixedLoad(requestOf.session(data.update)) },
    { id: "create", title: "POST /:id/sessions, a fresh collection each (create path)", load: (data) => rotating(data.create, (id) => requestOf.session(id)) },
    { id: "get", title: "GET /:id", load: (data) => fixedLoad(requestOf.get(data.get)) },
    { id: "authorize", title: "POST /:id/sessions/batch/authorize, a fresh collection each", load: (data) => rotating(data.authorize, requestOf.authorize) },
    // The host tax: core's own routes, on the host without the plugin ("core")
    // and with it ("plugin", after it served every case above).
    { id: "host_products", host: true, title: "host tax: core's GET /store/products", load: () => fixedLoad({ method: "GET", path: "/store/products?limit=12" }) },
    { id: "host_regions", host: true, title: "host tax: core's GET /store/regions", load: () => fixedLoad({ method: "GET", path: "/store/regions" }) },
    {
      id: "host_carts",
      host: true,
      title: "host tax: core's POST /store/carts",
      load: (data) => fixedLoad({ method: "POST", path: "/store/carts", body: { region_id: data.regionId } }),
    },
    {
      id: "create_slow",
      title: `POST /:id/sessions create path, test-pay ${SLOW_PROVIDER_MS} ms per call`,
      load: (data) => rotating(data.slowCreate, (id) => requestOf.session(id, "test-pay")),
      // Both backends' test-pay call the one fake PSP: setting it twice is harmless.
      before: () => expectOk("fake PSP", "POST", `${ctx.psp.url}/test/behaviours`, { body: { initiatePayment: { delayMs: SLOW_PROVIDER_MS } } }),
      after: () => expectOk("fake PSP", "POST", `${ctx.psp.url}/test/reset`),
    },
  ].map((c, i) => ({ ...c, number: i + 1 }))
}

/** One autocannon run; `result` is autocannon's per-run result (histograms encoded, for merging). */
function runAutocannon(ctx, url, duration, spec) {
  let firstFailure = null
  const request = {
    ...spec.request,
    ...(spec.setupRequest ? { setupRequest: spec.setupRequest } : {}),
    onResponse: (status, body) => {
      if (!firstFailure && (status < 200 || status >= 300)) firstFailure = `${status} ${String(body).slice(0, 200)}`
    },
  }
  const opts = { url, connections: CONNECTIONS, duration, sampleInt: SAMPLE_INTERVAL_MS, skipAggregateResult: true, requests: [request] }
  return new Promise((resolve, reject) => {
    ctx.load = autocannon(opts, (err, result) => {
      ctx.load = null
      if (err) reject(err)
      else resolve({ result, firstFailure })
    })
  })
}

function roundMetrics({ result, statements, cpuMicros }) {
  const merged = autocannon.aggregateResult([result], { url: "http://127.0.0.1" })
  return {
    rps: result.totalCompletedRequests / result.duration,
    p50: merged.latency.p50,
    p99: merged.latency.p99,
    seconds: result.duration,
    completed: result.totalCompletedRequests,
    sent: result.totalRequests,
    statements,
    cpuMsPerRequest: cpuPerRequest(cpuMicros, result.totalRequests),
  }
}

const cpuPerRequest = (micros, sent) => (sent && Number.isFinite(micros) ? micros / 1000 / sent : NaN)

/**
 * One backend's rounds of a case as one measurement: req/s = all completed
 * requests / all measured time; p50/p99 from the rounds' latency histograms
 * merged (autocannon.aggregateResult); rpsMin/rpsMax = the spread between rounds.
 */
function metricsOf(rounds) {
  const sum = (pick) => rounds.reduce((acc, r) => acc + pick(r), 0)
  const merged = autocannon.aggregateResult(rounds.map((r) => r.result), { url: "http://127.0.0.1" })
  const perRound = rounds.map(roundMetrics)
  const completed = sum((r) => r.result.totalCompletedRequests)
  const sent = sum((r) => r.result.totalRequests)
  const statements = sum((r) => r.statements)
  return {
    rps: completed / sum((r) => r.result.duration),
    p50: merged.latency.p50,
    p99: merged.latency.p99,
    rpsMin: Math.min(...perRound.map((r) => r.rps)),
    rpsMax: Math.max(...perRound.map((r) => r.rps)),
    completed,
    sent,
    non2xx: sum((r) => r.result.non2xx),
    errors: sum((r) => r.result.errors),
    statements,
    // Every sent request is finished by the server, cut off at the end or not.
    sqlPerRequest: sent ? statements / sent : NaN,
    // The backend process's CPU time (all threads) from settled to settled.
    cpuMsPerRequest: cpuPerRequest(sum((r) => r.cpuMicros), sent),
    // During the load only, over the completed requests (/proc tick resolution: 10 ms).
    machineCpuMsPerRequest: cpuPerRequest(sum((r) => r.machineCpuMicros), completed),
    postgresCpuMsPerRequest: cpuPerRequest(sum((r) => r.postgresCpuMicros), completed),
    firstNon2xx: rounds.map((r) => r.firstFailure).find(Boolean) || null,
    rounds: perRound,
  }
}

const CLOCK_TICKS_PER_SECOND = 100 // Linux USER_HZ, what /proc/stat and /proc/<pid>/stat count in

/**
 * The machine's CPU time so far (Linux /proc/stat, in ticks): busy (all but
 * idle and iowait), stolen by the hypervisor, and all; plus the CPU time of
 * every PostgreSQL process (its server processes, whoever they serve).
 */
function machineTicks() {
  try {
    const fields = fs.readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number)
    const all = fields.reduce((a, b) => a + b, 0)
    return { busy: all - fields[3] - (fields[4] || 0), steal: fields[7] || 0, all, postgres: postgresTicks() }
  } catch {
    return null
  }
}

/** CPU ticks of each PostgreSQL process, by pid. */
function postgresTicks() {
  const ticks = new Map()
  for (const pid of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
      const close = stat.lastIndexOf(")")
      if (stat.slice(stat.indexOf("(") + 1, close) !== "postgres") continue
      const fields = stat.slice(close + 2).split(" ")
      ticks.set(pid, Number(fields[11]) + Number(fields[12]))
    } catch {
      // The process ended between the listing and the read.
    }
  }
  return ticks
}

/**
 * PostgreSQL's CPU between two readings, per process: a process that ended
 * meanwhile (an autovacuum worker, an idle pool connection closed) takes its
 * CPU with it, so a plain difference of sums can even be negative. What such a
 * process spent within the window is missed (a small undercount).
 */
function postgresTicksBetween(before, after) {
  let ticks = 0
  for (const [pid, value] of after) {
    ticks += value - (before.get(pid) ?? 0)
  }
  return ticks
}

const ticksToMicros = (ticks) => (ticks * 1e6) / CLOCK_TICKS_PER_SECOND

/** A run on `backend` alone: its SQL counter is read settled before and after (cut-off requests finish first). */
async function measuredRun(ctx, backend, duration, spec) {
  const before = await settledReading(backend.counter)
  const ticksBefore = machineTicks()
  const { result, firstFailure } = await runAutocannon(ctx, backend.url, duration, spec)
  const ticksAfter = machineTicks()
  const after = await settledReading(backend.counter)
  const measured = ticksBefore && ticksAfter && ticksAfter.all > ticksBefore.all
  return {
    result,
    firstFailure,
    statements: after.count - before.count,
    cpuMicros: after.cpuMicros - before.cpuMicros,
    stealPercent: measured ? (100 * (ticksAfter.steal - ticksBefore.steal)) / (ticksAfter.all - ticksBefore.all) : NaN,
    // Everything on the machine during the load (backend, PostgreSQL, fake PSP, load generator).
    machineCpuMicros: measured ? ticksToMicros(ticksAfter.busy - ticksBefore.busy) : NaN,
    postgresCpuMicros: measured ? ticksToMicros(postgresTicksBetween(ticksBefore.postgres, ticksAfter.postgres)) : NaN,
  }
}

/** Round r's order: core, plugin | plugin, core | core, plugin | ... */
function roundOrder(backends, round) {
  return round % 2 === 0 ? backends : [...backends].reverse()
}

/**
 * A case on both backends: warm-up on each, then `rounds` rounds of
 * duration/rounds seconds per backend in alternating order, one backend
 * loaded at a time (nothing polls the idle one).
 */
async function measureCase(ctx, backends, seeded, benchCase, options) {
  for (const backend of backends) if (benchCase.before) await benchCase.before(backend)
  const specs = Object.fromEntries(backends.map((b) => [b.name, benchCase.load(seeded[b.name])]))
  for (const backend of backends) {
    if (options.warmup > 0) await runAutocannon(ctx, backend.url, options.warmup, specs[backend.name])
    await settledCount(backend.counter)
  }
  await analyzeDatabases(backends)
  const roundSeconds = options.duration / options.rounds
  const rounds = Object.fromEntries(backends.map((b) => [b.name, []]))
  for (let round = 0; round < options.rounds; round++) {
    for (const backend of roundOrder(backends, round)) {
      const run = await measuredRun(ctx, backend, roundSeconds, specs[backend.name])
      rounds[backend.name].push(run)
      const m = roundMetrics(run)
      const steal = Number.isFinite(run.stealPercent) ? `, hypervisor steal ${run.stealPercent.toFixed(1)}% of machine CPU` : ""
      log(`${benchCase.id} round ${round + 1}/${options.rounds} ${backend.name}: ${m.rps.toFixed(1)} req/s, p99 ${m.p99} ms, ${m.cpuMsPerRequest.toFixed(2)} CPU ms/req${steal}`)
    }
  }
  for (const backend of backends) if (benchCase.after) await benchCase.after(backend)

  const results = {}
  for (const backend of backends) {
    const metrics = metricsOf(rounds[backend.name])
    if (specs[backend.name].exhausted) {
      metrics.ranOutOfFreshCollections = true
      log(`WARNING: ${backend.name} ${benchCase.id} used up its fresh collections; later requests re-used them`)
    }
    log(
      `${backend.name} ${benchCase.id}: ${metrics.rps.toFixed(1)} req/s (rounds ${metrics.rpsMin.toFixed(1)}-${metrics.rpsMax.toFixed(1)}), ` +
        `p99 ${metrics.p99} ms, ${metrics.sqlPerRequest.toFixed(2)} SQL/req, ${metrics.cpuMsPerRequest.toFixed(2)} CPU ms/req`
    )
    results[backend.name] = metrics
  }
  return results
}

async function warmUp(ctx, backend, data, seconds = WARMUP_SECONDS) {
  await runAutocannon(ctx, backend.url, seconds, fixedLoad(requestOf.get(data.get)))
  await settledCount(backend.counter)
}

/** Captures and warm-up on each backend, then every case on both. */
async function benchBoth(ctx, backends, seeded, options) {
  const captures = []
  for (const backend of backends) captures.push(...(await captureEachKind(backend, seeded[backend.name])))
  for (const backend of backends) await warmUp(ctx, backend, seeded[backend.name])
  const cases = []
  for (const benchCase of benchCases(ctx).filter((c) => options.cases.includes(c.id))) {
    const results = await measureCase(ctx, backends, seeded, benchCase, options)
    cases.push({ id: benchCase.id, title: benchCase.title, number: benchCase.number, ...results })
  }
  for (const backend of backends) await reportOtherPgCopies(backend)
  // Resident memory after all the load, as it is and after full garbage
  // collections (what the load left in use: uncollected garbage alone put the
  // plugin's host from 118 MB below to 246 MB above core's in three runs): the
  // plugin's host may use at most 10 MB more than core's, after collection.
  const memory = {}
  for (const backend of backends) {
    const { rss } = await backend.counter.read()
    const collected = await backend.counter.collectGarbage()
    memory[backend.name] = { rssBytes: rss, rssAfterGcBytes: collected.rss, heapUsedAfterGcBytes: collected.heapUsed, heapCommittedAfterGcBytes: collected.heapCommitted, heapSpacesAfterGc: collected.spaces }
  }
  return { captures, cases, memory }
}

// ----------------------------------------------------------------- profiling

/**
 * `--profile <case>`: after warming both backends up on the case, profiles
 * each in turn (core, then plugin) under `duration` s of it, the other idle,
 * and prints where each spends its CPU time per request.
 */
async function profileBoth(ctx, backends, seeded, options) {
  const benchCase = benchCases(ctx).find((c) => c.id === options.profile)
  const dir = options.profileDir || fs.mkdtempSync(path.join(os.tmpdir(), "pcp-bench-profile-"))
  fs.mkdirSync(dir, { recursive: true })
  // The same state as in the bench: one request of each kind served already
  // (lazy loading done, and whatever a first provider call switches on).
  for (const backend of backends) await captureEachKind(backend, seeded[backend.name])
  for (const backend of backends) await warmUp(ctx, backend, seeded[backend.name])
  for (const earlier of benchCases(ctx).filter((c) => options.profileAfter.includes(c.id))) {
    for (const backend of backends) {
      if (earlier.before) await earlier.before(backend)
      log(`${backend.name}: ${earlier.id} for ${options.duration} s before the profile`)
      await runAutocannon(ctx, backend.url, options.duration, earlier.load(seeded[backend.name]))
      if (earlier.after) await earlier.after(backend)
    }
  }
  for (const backend of backends) if (benchCase.before) await benchCase.before(backend)
  const specs = Object.fromEntries(backends.map((b) => [b.name, benchCase.load(seeded[b.name])]))
  for (const backend of backends) {
    if (options.warmup > 0) await runAutocannon(ctx, backend.url, options.warmup, specs[backend.name])
    await settledCount(backend.counter)
  }
  await analyzeDatabases(backends)
  const runs = {}
  for (const backend of backends) {
    await backend.profiler.start()
    const { result } = await runAutocannon(ctx, backend.url, options.duration, specs[backend.name])
    await settledCount(backend.counter)
    const profile = await backend.profiler.stop()
    const file = path.join(dir, `${benchCase.id}-${backend.name}.cpuprofile`)
    fs.writeFileSync(file, JSON.stringify(profile))
    // Every sent request was finished by the server inside the profile.
    runs[backend.name] = { analysis: profiling.analyze(profile), requests: result.totalRequests, rps: result.totalCompletedRequests / result.duration, file }
    log(`${backend.name} ${benchCase.id} profiled: ${runs[backend.name].rps.toFixed(1)} req/s, ${file}`)
    if (result.non2xx || result.errors) log(`WARNING: ${backend.name}: ${result.non2xx} non-2xx, ${result.errors} errors while profiled`)
  }
  for (const backend of backends) if (benchCase.after) await benchCase.after(backend)
  if (Object.values(specs).some((s) => s.exhausted)) log(`WARNING: ${benchCase.id} used up its fresh collections; later requests re-used them`)
  process.stdout.write("\n" + profiling.formatProfiles(`${benchCase.number} ${benchCase.title}`, runs) + "\n")
}

// ----------------------------------------------------------------- database

async function prepareDatabase(ctx) {
  ctx.pgStarting = startPostgres({})
  ctx.pg = await ctx.pgStarting
  ctx.dbName = `pcp_bench_${Date.now()}_${crypto.randomBytes(3).toString("hex")}`
  await createDatabase(ctx.pg.baseUrl, ctx.dbName)
  ctx.dbUrl = databaseUrl(ctx.pg.baseUrl, ctx.dbName)
  log(`database ${ctx.dbName} on ${ctx.pg.embedded ? "embedded" : "external"} PostgreSQL; running migrations with the plugin`)
  await runMigrations({ hostDir: HOST_DIR, databaseUrl: ctx.dbUrl, env: { HOST_WITHOUT_PLUGIN: "0" } })
  ctx.db = new Client({ connectionString: ctx.dbUrl })
  // The server going away (e.g. Ctrl-C reaches embedded PostgreSQL first) must not crash the cleanup.
  ctx.db.on("error", (err) => log(`seed connection: ${err.message}`))
  await ctx.db.connect()
}

async function cleanup(ctx) {
  if (ctx.load) ctx.load.stop()
  // A signal during startPostgres: wait for it, so the server it starts is stopped too.
  if (!ctx.pg && ctx.pgStarting) ctx.pg = await ctx.pgStarting.catch(() => null)
  const steps = [
    () => ctx.db && ctx.db.end(),
    () => Promise.all(ctx.extraClients.map((client) => client.end())),
    () => stopBackends(ctx),
    () => ctx.psp && ctx.psp.stop(),
    () => ctx.pg && !ctx.pg.embedded && ctx.dbName && dropDatabase(ctx.pg.baseUrl, ctx.dbName),
    () => ctx.pg && !ctx.pg.embedded && Promise.all(ctx.extraDatabases.map((name) => dropDatabase(ctx.pg.baseUrl, name))),
    () => ctx.pg && ctx.pg.stop(),
  ]
  for (const step of steps) {
    await Promise.resolve()
      .then(step)
      .catch((err) => log(`cleanup: ${err.message}`))
  }
}

// -------------------------------------------------------------------- main

function printReport({ settings, cases, captures, memory, scale }, showSql) {
  const targets = [...report.evaluateTargets(cases), ...report.memoryTargets(memory)]
  const scaleTargets = scale ? scaleReport.evaluate(scale) : []
  const lines = [
    "",
    `Payment Collections bench: ${settings.connections} connections, ${settings.durationSeconds} s per case and backend ` +
      `in ${settings.rounds} rounds of ${report.fixed(settings.roundSeconds, 2)} s, ` +
      `${settings.postgres} PostgreSQL, ${settings.freshCollectionsPerCase} fresh collections per create/authorize case ` +
      `and backend (${settings.slowFreshCollections} for create_slow), amount ${settings.amount}`,
    `Both backends up at once on one database; per case: ${settings.warmupSecondsPerCase} s warm-up on each, then rounds in alternating order`,
    "(core, plugin | plugin, core | ...), one backend loaded at a time. req/s = all completed / all measured time;",
    "p50/p99 from the rounds' merged latency histograms; rounds = min-max req/s of the single rounds.",
    "",
    report.formatResults(cases),
    ...[report.formatFailures(cases)].filter(Boolean),
    "",
    "SQL/req = statements seen by pg's Client#query during the run (BEGIN/COMMIT included) / requests sent",
    "(sent = completed + the <= 10 cut off at the end, which the server still finishes and whose statements are counted)",
    "CPU ms/req = the backend process's CPU time (user + system, all threads) during the rounds / requests sent;",
    "PG CPU ms/req = all PostgreSQL processes' CPU time during the load / requests completed;",
    "machine CPU ms/req = the whole machine's busy CPU time (backend, PostgreSQL, fake PSP, load generator) during",
    `the load / requests completed. With ${os.cpus().length} CPUs, req/s is capped by the backend's event loop (~1 core)`,
    "and by the machine: a plugin that saves backend CPU gains req/s only while the machine has CPU to spare.",
    "",
    "plugin / core",
    report.formatRatios(cases),
    "",
    "memory after the load",
    report.formatMemory(memory),
    "",
    "targets",
    report.formatTargets(targets),
    "",
    "SQL statements of one request",
    report.formatCaptureCounts(captures),
  ]
  if (showSql) lines.push("", report.formatStatementLists(captures, showSql))
  if (scale) {
    lines.push("", scaleReport.format(scale), "", "scale targets", report.formatTargets(scaleTargets))
    lines.push("", "EXPLAIN (ANALYZE, BUFFERS), full database", scaleReport.formatExplainPlans(scale.explains))
  }
  const scaleJson = scale ? { scale: scaleReport.json(scale, scaleTargets) } : {}
  lines.push("", report.jsonLine({ settings, cases, targets, captures, memory, ...scaleJson }))
  process.stdout.write(lines.join("\n") + "\n")
}

// Fresh collections cover the case's warm-up and all its rounds.
function seedSizes(options) {
  const seconds = options.duration + options.warmup
  return {
    fresh: Math.ceil(seconds * FRESH_PER_SECOND),
    slowFresh: Math.ceil(seconds * SLOW_FRESH_PER_SECOND),
  }
}

// The region is made through the admin API, so seeding needs the first backend up.
async function seedBoth(ctx, backend, sizes) {
  const adminToken = await seed.createAdminToken(ctx.db)
  const regionId = await seed.createRegion(backend.url, adminToken)
  log(`seeding ${sizes.fresh} fresh collections per create/authorize case for each backend`)
  await seed.createProducts(backend.url, adminToken)
  const seeded = {
    core: { regionId, ...(await seed.seedBackendData(ctx.db, regionId, sizes)) },
    plugin: { regionId, ...(await seed.seedBackendData(ctx.db, regionId, sizes)) },
  }
  await seed.analyzeTables(ctx.db)
  return seeded
}

async function run(ctx, options) {
  ctx.psp = await startFakePsp()
  await prepareDatabase(ctx)
  const sizes = seedSizes(options)
  const profile = options.profile !== null

  // One after the other: two Medusa boots at once would race on the rows
  // they upsert at startup (providers, store).
  const coreBackend = await bootBackend(ctx, "core", ctx.dbUrl, { profile })
  const seeded = await seedBoth(ctx, coreBackend, sizes)
  const pluginBackend = await bootBackend(ctx, "plugin", ctx.dbUrl, { profile })
  const backends = [coreBackend, pluginBackend]

  if (profile) {
    await profileBoth(ctx, backends, seeded, options)
    await stopBackends(ctx)
    return
  }
  const { captures, cases, memory } = await benchBoth(ctx, backends, seeded, options)
  await stopBackends(ctx)
  // What the scale phase measured is reported even when it fails part-way.
  const scale = options.scale ? {} : null
  const scaleFailure = scale && (await runScale(ctx, scaleTools, options, scale).then(() => null, (err) => err))
  await stopBackends(ctx)

  const settings = {
    connections: CONNECTIONS,
    durationSeconds: options.duration,
    rounds: options.rounds,
    roundSeconds: options.duration / options.rounds,
    order: "alternating, core first in round 1",
    warmupSecondsPerCase: options.warmup,
    latencyPercentiles: "merged histograms of the rounds",
    postgres: ctx.pg.embedded ? "embedded" : "external",
    freshCollectionsPerCase: sizes.fresh,
    slowFreshCollections: sizes.slowFresh,
    amount: seed.AMOUNT,
  }
  printReport({ settings, cases, captures, memory, scale }, options.showSql)
  if (scaleFailure) throw scaleFailure
}

// The signal handler and a failing run both end up here; whoever comes second
// waits for the same cleanup instead of exiting half-way through it.
function cleanupOnce(ctx) {
  if (!ctx.cleaning) ctx.cleaning = cleanup(ctx)
  return ctx.cleaning
}

function onSignal(ctx, signal) {
  if (ctx.interrupted) return
  ctx.interrupted = true
  log(`${signal}: stopping what was started`)
  cleanupOnce(ctx).finally(() => process.exit(130))
}

async function main(ctx) {
  const options = parseArgs(process.argv.slice(2), process.env)
  process.on("SIGINT", () => onSignal(ctx, "SIGINT"))
  process.on("SIGTERM", () => onSignal(ctx, "SIGTERM"))
  try {
    await run(ctx, options)
  } finally {
    await cleanupOnce(ctx)
  }
}

// What the scale phase measures with (scripts/lib/bench-scale.js).
const scaleTools = {
  HOST_DIR,
  log,
  bootBackend,
  benchCases,
  captureEachKind,
  warmUp,
  measureCase,
  runAutocannon,
  rotating,
  requestOf,
  settledReading,
  seedSizes,
}

const context = { interrupted: false, cleaning: null, backends: [], extraDatabases: [], extraClients: [] }
main(context).then(
  () => process.exit(0),
  (err) => {
    if (context.interrupted) return process.exit(130)
    log(err && err.stack && !err.usage ? err.stack : String(err && err.message ? err.message : err))
    process.exit(1)
  }
)
