"use strict"

// `npm run bench -- --scale`: how the plugin behaves on a busy merchant's
// tables. Two more databases on the bench's PostgreSQL, both migrated and given
// the bench's usual seed (scripts/lib/bench-seed.js, identical on both):
// "empty" keeps only that, "full" also gets the scale seed
// (bench-scale-seed.js). A backend with the plugin on each (worker_mode
// "server", so no reconciler timer runs behind the measurements; the bench
// runs the passes itself through the bench-hooks fixture). Then:
//   1. the timed cases on both, in rounds alternating which goes first, as the
//      bench measures core against the plugin;
//   2. batch growth: batches of 1, 10 and 50 sessions over three providers;
//   3. one reconciler pass on each (its statements captured), the admin's
//      attempt-log reads, and EXPLAIN (ANALYZE, BUFFERS) of all their queries
//      on "full", with and without the indexes of the newest migration;
//   4. retention: a day's worth of journal rows pruned while create runs, with
//      the locks it takes;
//   5. the open rows drained by successive passes.

const path = require("path")
const { Client } = require("pg")
const { createDatabase, databaseUrl } = require("./postgres")
const { runMigrations, REPO_ROOT } = require("./medusa-host")
const { expectOk } = require("./http-json")
const { entityId } = require("./entity-id")
const seed = require("./bench-seed")
const { seedScale, settle } = require("./bench-scale-seed")
const { batchGrowth, BATCH_SIZES, BATCH_REPEATS, batchCollectionsNeeded } = require("./bench-scale-batch")
const { pruneWhileCreating, pruneBaselineSeconds, PRUNE_FRESH_PER_SECOND, PRUNE_MAX_SECONDS } = require("./bench-scale-prune")
const { explainAll, reconcilerIndexes, timeIndexBuilds } = require("./bench-explain")

const SCALE_CASES = ["update", "create", "get", "authorize"]
const BATCH_PROVIDERS = ["manual", "test-pay", "test-fields"]
/** The plugin's defaults: the options the bench's backends run with (none given). */
const OPTIONS = () => require(path.join(REPO_ROOT, "dist", "types", "options")).resolveOptions({})
const DRAIN_MAX_SECONDS = 600

const adminHeaders = (token) => ({ "x-medusa-access-token": token })

async function scaleDatabase(ctx, tools, suffix) {
  const name = `${ctx.dbName}_${suffix}`
  await createDatabase(ctx.pg.baseUrl, name)
  ctx.extraDatabases.push(name)
  const url = databaseUrl(ctx.pg.baseUrl, name)
  tools.log(`scale: database ${name}, running migrations with the plugin`)
  await runMigrations({ hostDir: tools.HOST_DIR, databaseUrl: url, env: { HOST_WITHOUT_PLUGIN: "0" } })
  const db = new Client({ connectionString: url })
  db.on("error", (err) => tools.log(`${suffix} seed connection: ${err.message}`))
  await db.connect()
  ctx.extraClients.push(db)
  return { name, url, db }
}

async function createBatchRegion(backendUrl, token) {
  const res = await expectOk("region", "POST", `${backendUrl}/admin/regions`, {
    headers: adminHeaders(token),
    body: { name: "Bench batch region", currency_code: "usd", tax_rate: 0, payment_providers: BATCH_PROVIDERS, fulfillment_providers: [], countries: [] },
  })
  return res.body.region.id
}

async function insertCollections(db, regionId, count) {
  const ids = Array.from({ length: count }, () => entityId("paycol"))
  await db.query(
    `INSERT INTO payment_collection (id, type, status, amount, region_id, currency_code, created_by)
     SELECT id, 'order_edit', 'not_paid', $2, $3, 'usd', 'bench' FROM unnest($1::text[]) AS id`,
    [ids, seed.AMOUNT, regionId]
  )
  return ids
}

/** A backend with the plugin on one scale database, with the bench's usual seed. */
async function bootScaleBackend(ctx, tools, name, database, sizes) {
  const backend = await tools.bootBackend(ctx, name, database.url, { env: { MEDUSA_WORKER_MODE: "server", BENCH_HOOKS: "1" } })
  const adminToken = await seed.createAdminToken(database.db)
  const regionId = await seed.createRegion(backend.url, adminToken)
  const batchRegionId = await createBatchRegion(backend.url, adminToken)
  const data = { regionId, ...(await seed.seedBackendData(database.db, regionId, sizes)) }
  data.batch = await insertCollections(database.db, batchRegionId, batchCollectionsNeeded())
  await seed.analyzeTables(database.db)
  return { backend, data, adminToken }
}

/** One reconciler pass, its statements captured and counted. */
async function onePass(tools, backend) {
  const before = await tools.settledReading(backend.counter)
  await backend.counter.startCapture()
  const started = Date.now()
  const { body } = await expectOk("reconcile pass", "POST", `${backend.url}/bench-hooks/reconcile-pass`)
  const wallMs = Date.now() - started
  const after = await tools.settledReading(backend.counter)
  const statements = await backend.counter.captured()
  return { ...body, wallMs, statementCount: after.count - before.count, statements }
}

/** The admin's attempt-log reads, each timed with its statements captured. */
async function attemptLogReads(tools, backend, token, collectionId) {
  const reads = [
    { id: "one collection", path: `/admin/payment-collections/${collectionId}/attempts?limit=20` },
    { id: "state=needs_attention", path: "/admin/payment-collections/attempts?state=needs_attention" },
    { id: "state=failed", path: "/admin/payment-collections/attempts?state=failed" },
    { id: "state=committed", path: "/admin/payment-collections/attempts?state=committed" },
  ]
  const results = []
  for (const read of reads) {
    await expectOk("attempt log", "GET", backend.url + read.path, { headers: adminHeaders(token) })
    await tools.settledReading(backend.counter)
    await backend.counter.startCapture()
    const started = process.hrtime.bigint()
    const { body } = await expectOk("attempt log", "GET", backend.url + read.path, { headers: adminHeaders(token) })
    const ms = Number(process.hrtime.bigint() - started) / 1e6
    await tools.settledReading(backend.counter)
    const statements = (await backend.counter.captured()).filter((s) => /payment_collection_attempt/.test(s.text))
    results.push({ ...read, ms, count: body.count, statements })
  }
  return results
}

async function newestAttemptCollection(db) {
  const { rows } = await db.query(`SELECT payment_collection_id FROM payment_collection_attempt ORDER BY created_at DESC LIMIT 1`)
  return rows[0].payment_collection_id
}

/** Passes until none finds a collection to settle (or the time is up). */
async function drain(tools, backend, db) {
  const started = Date.now()
  const passes = []
  while (Date.now() - started < DRAIN_MAX_SECONDS * 1000) {
    const { body } = await expectOk("reconcile pass", "POST", `${backend.url}/bench-hooks/reconcile-pass`)
    passes.push({ collections: body.swept.collections, finished: body.swept.finished, skipped: body.swept.skipped, ms: body.totalMs })
    if (body.swept.collections === 0) break
  }
  const { rows } = await db.query(
    `SELECT state, (next_attempt_at IS NULL OR next_attempt_at <= now()) AS due, count(*)::int AS rows
       FROM payment_collection_attempt WHERE state IN ('started', 'answered', 'uncertain', 'needs_attention')
      GROUP BY 1, 2 ORDER BY 1, 2`
  )
  const settled = passes.reduce((sum, p) => sum + p.finished, 0)
  return { passes: passes.length, settled, seconds: (Date.now() - started) / 1000, maxPassMs: Math.max(...passes.map((p) => p.ms)), complete: passes.at(-1)?.collections === 0, openAfter: rows }
}

/** Runs one step of the scale phase into `result[name]`; a failure is noted and the phase goes on. */
async function guarded(tools, result, name, fn) {
  try {
    result[name] = await fn()
  } catch (err) {
    tools.log(`scale: ${name} failed: ${err.stack}`)
    result.failures.push(`${name}: ${err.message}`)
  }
}

/**
 * The scale phase (see the top of this file). `tools`: what scripts/bench.js
 * measures with. Fills `result` as it goes (what a failure leaves is still
 * reported): everything the report prints.
 */
async function runScale(ctx, tools, options, result) {
  const pluginOptions = OPTIONS()
  Object.assign(result, { factor: options.scaleFactor, options: pluginOptions, batchSizes: BATCH_SIZES, batchRepeats: BATCH_REPEATS, failures: [], cases: [] })
  const sizes = tools.seedSizes(options)
  const empty = await scaleDatabase(ctx, tools, "empty")
  const full = await scaleDatabase(ctx, tools, "full")

  const emptySide = await bootScaleBackend(ctx, tools, "empty", empty, sizes)
  const fullSide = await bootScaleBackend(ctx, tools, "full", full, sizes)
  const pruneSeconds = 2 * pruneBaselineSeconds(options) + PRUNE_MAX_SECONDS + options.warmup
  fullSide.data.pruneCreate = await insertCollections(full.db, fullSide.data.regionId, Math.ceil(pruneSeconds * PRUNE_FRESH_PER_SECOND))

  // A real answer of the backend: what every seeded Idempotency-Key stored.
  const { body: answerBody } = await expectOk("answer", "GET", `${fullSide.backend.url}/store/payment-collections/${fullSide.data.get}`)
  tools.log(`scale: seeding the full database at factor ${options.scaleFactor}`)
  result.seed = await seedScale(full.db, { factor: options.scaleFactor, regionId: fullSide.data.regionId, options: pluginOptions, pspUrl: ctx.psp.url, answerBody, log: tools.log })
  tools.log(`scale: seeded in ${result.seed.seconds.toFixed(0)} s: ${JSON.stringify(result.seed.counts)}`)
  // The seed ends with it on "full": the same on "empty", so that the two differ only in what they hold.
  await settle(empty.db)

  const backends = [emptySide.backend, fullSide.backend]
  const data = { empty: emptySide.data, full: fullSide.data }
  for (const backend of backends) await tools.captureEachKind(backend, data[backend.name])
  for (const backend of backends) await tools.warmUp(ctx, backend, data[backend.name])
  for (const benchCase of tools.benchCases(ctx).filter((c) => SCALE_CASES.includes(c.id))) {
    const measured = await tools.measureCase(ctx, backends, data, benchCase, options)
    result.cases.push({ id: benchCase.id, title: benchCase.title, ...measured })
  }

  await guarded(tools, result, "batch", () => batchGrowth(ctx, tools, backends, { empty: data.empty.batch, full: data.full.batch }))
  await guarded(tools, result, "pass", async () => ({ empty: await onePass(tools, emptySide.backend), full: await onePass(tools, fullSide.backend) }))
  await guarded(tools, result, "attemptLog", async () => ({
    empty: await attemptLogReads(tools, emptySide.backend, emptySide.adminToken, await newestAttemptCollection(empty.db)),
    full: await attemptLogReads(tools, fullSide.backend, fullSide.adminToken, await newestAttemptCollection(full.db)),
  }))
  const indexes = reconcilerIndexes()
  result.indexMigration = indexes.migration
  const captured = [...(result.pass?.full.statements ?? []), ...(result.attemptLog?.full.flatMap((r) => r.statements) ?? [])]
  await guarded(tools, result, "explains", () => explainAll(full.db, captured, indexes, tools.log))
  await guarded(tools, result, "indexBuilds", () => timeIndexBuilds(full.db, indexes))
  await guarded(tools, result, "prune", () =>
    pruneWhileCreating(ctx, tools, { backend: fullSide.backend, db: full.db, dbUrl: full.url, collections: fullSide.data.pruneCreate, options, pluginOptions })
  )
  await guarded(tools, result, "drain", () => drain(tools, fullSide.backend, full.db))

  for (const p of Object.values(result.pass ?? {})) delete p.statements
  for (const reads of Object.values(result.attemptLog ?? {})) for (const r of reads) delete r.statements
  return result
}

module.exports = { runScale, SCALE_CASES }
