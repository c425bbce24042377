#!/usr/bin/env node
"use strict"

// `npm run bench`: the same load against core 1.20.11 alone and against the
// same host with this plugin, on one database with identical seed data; prints
// req/s, latency, non-2xx and SQL statements per request, the plugin/core
// ratios and which targets are met. Options: --duration <s> (or BENCH_DURATION,
// default 10 s per case), --show-sql[=full] (print the statements of one
// request of each kind). Uses DATABASE_URL's server when set, else embedded PostgreSQL.

const crypto = require("crypto")
const path = require("path")
const autocannon = require("autocannon")
const { Client } = require("pg")
const { startPostgres, createDatabase, dropDatabase, databaseUrl } = require("./lib/postgres")
const { runMigrations, startBackend, REPO_ROOT } = require("./lib/medusa-host")
const { freePort } = require("./lib/net")
const { httpJson, expectOk } = require("./lib/http-json")
const seed = require("./lib/bench-seed")
const report = require("./lib/bench-report")

const HOST_DIR = path.join(REPO_ROOT, "integration-tests", "host")
const SQL_COUNTER = path.join(__dirname, "lib", "sql-counter.js")
const PLUGIN_HEADER = "x-payment-collections-plugin"
const CONNECTIONS = 10
const WARMUP_SECONDS = 1
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

function parseArgs(argv, env) {
  const options = { duration: Number(env.BENCH_DURATION || 10), showSql: null }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === "--duration") options.duration = Number(argv[++i])
    else if (arg.startsWith("--duration=")) options.duration = Number(arg.slice("--duration=".length))
    else if (arg === "--show-sql") options.showSql = "summary"
    else if (arg === "--show-sql=full") options.showSql = "full"
    else throw usageError(`unknown argument ${arg} (options: --duration <s>, --show-sql[=full])`)
  }
  if (!(options.duration > 0)) throw usageError("--duration must be a number of seconds > 0")
  return options
}

// ------------------------------------------------------------- SQL counter

function sqlCounterAt(url) {
  return {
    read: async () => (await expectOk("sql-counter", "GET", `${url}/count`)).body,
    startCapture: () => expectOk("sql-counter", "POST", `${url}/capture`),
    captured: async () => (await expectOk("sql-counter", "GET", `${url}/captured`)).body.statements,
  }
}

// Requests cut off when a run ends are still finished by the server: wait
// until the count stops moving before reading it.
async function settledCount(counter) {
  const deadline = Date.now() + SETTLE_TIMEOUT_MS
  let last = (await counter.read()).count
  for (;;) {
    await sleep(SETTLE_POLL_MS)
    const now = (await counter.read()).count
    if (now === last || Date.now() > deadline) return now
    last = now
  }
}

// ---------------------------------------------------------------- backends

function preloadOptions(existing) {
  return [existing, `--require ${JSON.stringify(SQL_COUNTER)}`].filter(Boolean).join(" ")
}

async function bootBackend(ctx, name, dbUrl) {
  const counterPort = await freePort()
  log(`starting ${name} backend`)
  const backend = await startBackend({
    hostDir: HOST_DIR,
    databaseUrl: dbUrl,
    env: {
      HOST_WITHOUT_PLUGIN: name === "core" ? "1" : "0",
      NODE_OPTIONS: preloadOptions(process.env.NODE_OPTIONS),
      SQL_COUNTER_PORT: String(counterPort),
    },
  })
  ctx.backend = backend
  const counter = sqlCounterAt(`http://127.0.0.1:${counterPort}`)
  await counter.read().catch((err) => {
    throw new Error(`${name} backend: the SQL counter does not answer on port ${counterPort} (${err.message})\n${backend.output()}`)
  })
  return { name, url: backend.url, counter }
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

async function stopBackend(ctx) {
  const backend = ctx.backend
  ctx.backend = null
  if (backend) await backend.stop()
}

// The plugin marks its answers; this proves which code served the run.
function assertServedBy(backend, res) {
  const byPlugin = res.headers.has(PLUGIN_HEADER)
  if (byPlugin !== (backend.name === "plugin")) {
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

function benchCases(data) {
  return [
    { id: "update", title: "POST /:id/sessions, one collection re-posted (update path)", load: () => fixedLoad(requestOf.session(data.update)) },
    { id: "create", title: "POST /:id/sessions, a fresh collection each (create path)", load: () => rotating(data.create, (id) => requestOf.session(id)) },
    { id: "get", title: "GET /:id", load: () => fixedLoad(requestOf.get(data.get)) },
    { id: "authorize", title: "POST /:id/sessions/batch/authorize, a fresh collection each", load: () => rotating(data.authorize, requestOf.authorize) },
    {
      id: "create_slow",
      title: `POST /:id/sessions create path, test-pay ${SLOW_PROVIDER_MS} ms per call`,
      load: () => rotating(data.slowCreate, (id) => requestOf.session(id, "test-pay")),
      before: (backend) => expectOk("test-pay", "POST", `${backend.url}/test-pay/behaviour`, { body: { initiatePayment: { delayMs: SLOW_PROVIDER_MS } } }),
      after: (backend) => expectOk("test-pay", "POST", `${backend.url}/test-pay/reset`),
    },
  ].map((c, i) => ({ ...c, number: i + 1 }))
}

function runAutocannon(ctx, url, duration, spec) {
  let firstFailure = null
  const request = {
    ...spec.request,
    ...(spec.setupRequest ? { setupRequest: spec.setupRequest } : {}),
    onResponse: (status, body) => {
      if (!firstFailure && (status < 200 || status >= 300)) firstFailure = `${status} ${String(body).slice(0, 200)}`
    },
  }
  return new Promise((resolve, reject) => {
    ctx.load = autocannon({ url, connections: CONNECTIONS, duration, requests: [request] }, (err, result) => {
      ctx.load = null
      if (err) reject(err)
      else resolve({ result, firstFailure })
    })
  })
}

function metricsOf(result, statements) {
  return {
    rps: result.requests.total / result.duration,
    p50: result.latency.p50,
    p99: result.latency.p99,
    completed: result.requests.total,
    sent: result.requests.sent,
    non2xx: result.non2xx,
    errors: result.errors,
    statements,
    // Every sent request is finished by the server, cut off at the end or not.
    sqlPerRequest: result.requests.sent ? statements / result.requests.sent : NaN,
  }
}

async function measureCase(ctx, backend, benchCase, duration) {
  if (benchCase.before) await benchCase.before(backend)
  const spec = benchCase.load()
  const before = await settledCount(backend.counter)
  const { result, firstFailure } = await runAutocannon(ctx, backend.url, duration, spec)
  const after = await settledCount(backend.counter)
  if (benchCase.after) await benchCase.after(backend)
  const metrics = { ...metricsOf(result, after - before), firstNon2xx: firstFailure }
  if (spec.exhausted) {
    metrics.ranOutOfFreshCollections = true
    log(`WARNING: ${backend.name} ${benchCase.id} used up its fresh collections; later requests re-used them`)
  }
  log(`${backend.name} ${benchCase.id}: ${metrics.rps.toFixed(1)} req/s, p99 ${metrics.p99} ms, ${metrics.sqlPerRequest.toFixed(2)} SQL/req`)
  return metrics
}

async function warmUp(ctx, backend, data) {
  await runAutocannon(ctx, backend.url, WARMUP_SECONDS, fixedLoad(requestOf.get(data.get)))
}

/** Captures, warm-up and the timed cases on one running backend. */
async function benchBackend(ctx, backend, data, options) {
  const captures = await captureEachKind(backend, data)
  await warmUp(ctx, backend, data)
  const results = {}
  for (const benchCase of benchCases(data)) {
    results[benchCase.id] = await measureCase(ctx, backend, benchCase, options.duration)
  }
  await reportOtherPgCopies(backend)
  return { captures, results }
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
    () => stopBackend(ctx),
    () => ctx.pg && !ctx.pg.embedded && ctx.dbName && dropDatabase(ctx.pg.baseUrl, ctx.dbName),
    () => ctx.pg && ctx.pg.stop(),
  ]
  for (const step of steps) {
    await Promise.resolve()
      .then(step)
      .catch((err) => log(`cleanup: ${err.message}`))
  }
}

// -------------------------------------------------------------------- main

function printReport({ settings, cases, captures }, showSql) {
  const targets = report.evaluateTargets(cases)
  const lines = [
    "",
    `Payment Collections bench: ${settings.connections} connections, ${settings.durationSeconds} s per case, ` +
      `${settings.postgres} PostgreSQL, ${settings.freshCollectionsPerCase} fresh collections per create/authorize case ` +
      `(${settings.slowFreshCollections} for create_slow), amount ${settings.amount}`,
    "",
    report.formatResults(cases),
    ...[report.formatFailures(cases)].filter(Boolean),
    "",
    "SQL/req = statements seen by pg's Client#query during the run (BEGIN/COMMIT included) / requests sent",
    "(sent = completed + the <= 10 cut off at the end, which the server still finishes and whose statements are counted)",
    "",
    "plugin / core",
    report.formatRatios(cases),
    "",
    "targets",
    report.formatTargets(targets),
    "",
    "SQL statements of one request",
    report.formatCaptureCounts(captures),
  ]
  if (showSql) lines.push("", report.formatStatementLists(captures, showSql))
  lines.push("", report.jsonLine({ settings, cases, targets, captures }))
  process.stdout.write(lines.join("\n") + "\n")
}

function seedSizes(duration) {
  return {
    fresh: Math.ceil(duration * FRESH_PER_SECOND),
    slowFresh: Math.ceil(duration * SLOW_FRESH_PER_SECOND),
  }
}

// The region is made through the admin API, so seeding needs the first backend up.
async function seedBoth(ctx, backend, sizes) {
  const adminToken = await seed.createAdminToken(ctx.db)
  const regionId = await seed.createRegion(backend.url, adminToken)
  log(`seeding ${sizes.fresh} fresh collections per create/authorize case for each backend`)
  const seeded = {
    core: await seed.seedBackendData(ctx.db, regionId, sizes),
    plugin: await seed.seedBackendData(ctx.db, regionId, sizes),
  }
  await seed.analyzeTables(ctx.db)
  return seeded
}

async function run(ctx, options) {
  await prepareDatabase(ctx)
  const sizes = seedSizes(options.duration)

  const coreBackend = await bootBackend(ctx, "core", ctx.dbUrl)
  const seeded = await seedBoth(ctx, coreBackend, sizes)
  const core = await benchBackend(ctx, coreBackend, seeded.core, options)
  await stopBackend(ctx)

  await seed.analyzeTables(ctx.db)
  const pluginBackend = await bootBackend(ctx, "plugin", ctx.dbUrl)
  const plugin = await benchBackend(ctx, pluginBackend, seeded.plugin, options)
  await stopBackend(ctx)

  const cases = benchCases(seeded.core).map(({ id, title, number }) => ({
    id,
    title,
    number,
    core: core.results[id],
    plugin: plugin.results[id],
  }))
  const settings = {
    connections: CONNECTIONS,
    durationSeconds: options.duration,
    postgres: ctx.pg.embedded ? "embedded" : "external",
    freshCollectionsPerCase: sizes.fresh,
    slowFreshCollections: sizes.slowFresh,
    amount: seed.AMOUNT,
  }
  printReport({ settings, cases, captures: [...core.captures, ...plugin.captures] }, options.showSql)
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

const context = { interrupted: false, cleaning: null }
main(context).then(
  () => process.exit(0),
  (err) => {
    if (context.interrupted) return process.exit(130)
    log(err && err.stack && !err.usage ? err.stack : String(err && err.message ? err.message : err))
    process.exit(1)
  }
)
