"use strict"

// Retention under load (`npm run bench -- --scale`): the create case runs on
// the full backend for a while, then again while the backend prunes the day's
// worth of journal rows past attempt_retention_days — batch after batch, as
// successive reconciler passes prune them (the bench-hooks prune route) — and
// once more after it. Meanwhile another connection samples pg_locks every
// 50 ms: which relations the prune's statements lock and how, and every lock
// somebody waited for, with how long its statement had been running.

const autocannon = require("autocannon")
const { Client } = require("pg")

/** Fresh collections per second of create the case may use (above what 10 connections reach). */
const PRUNE_FRESH_PER_SECOND = 500
/** Create is measured during the prune for at most this long. */
const PRUNE_MAX_SECONDS = 90
const LOCK_SAMPLE_MS = 50
const PRUNE_TIMEOUT_MS = 15 * 60_000

/** Seconds of create before and after the prune. */
const pruneBaselineSeconds = (options) => Math.max(2, options.duration / 2)

const LOCKS_SQL = `
  SELECT a.pid, a.state, left(regexp_replace(a.query, '\\s+', ' ', 'g'), 70) AS query,
         (extract(epoch FROM clock_timestamp() - a.query_start) * 1000)::int AS running_ms, a.query_start::text AS since,
         l.locktype, CASE WHEN l.relation IS NOT NULL THEN l.relation::regclass::text END AS relation, l.mode, l.granted
    FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
   WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()`

const PRUNE_STATEMENT = /^DELETE FROM payment_collection_attempt WHERE id IN/

function startLockSampler(connectionString) {
  const client = new Client({ connectionString })
  const held = new Map()
  const waits = new Map()
  let samples = 0
  let pruneSamples = 0
  let stopped = false
  const loop = (async () => {
    await client.connect()
    while (!stopped) {
      const { rows } = await client.query(LOCKS_SQL)
      samples++
      let prune = false
      for (const row of rows) {
        if (PRUNE_STATEMENT.test(row.query) && row.state === "active") {
          prune = true
          const key = `${row.relation ?? row.locktype} ${row.mode}${row.granted ? "" : " (waiting)"}`
          held.set(key, (held.get(key) ?? 0) + 1)
        }
        if (!row.granted) {
          const key = `${row.pid} ${row.since}`
          const wait = { locktype: row.locktype, relation: row.relation, mode: row.mode, query: row.query, ms: row.running_ms }
          if (!waits.has(key) || waits.get(key).ms < wait.ms) waits.set(key, wait)
        }
      }
      if (prune) pruneSamples++
      await new Promise((resolve) => setTimeout(resolve, LOCK_SAMPLE_MS))
    }
    await client.end()
  })()
  return {
    async stop() {
      stopped = true
      await loop
      const waitList = [...waits.values()].sort((a, b) => b.ms - a.ms)
      return {
        samples,
        pruneSamples,
        intervalMs: LOCK_SAMPLE_MS,
        pruneHolds: [...held.entries()].sort((a, b) => b[1] - a[1]).map(([lock, seen]) => ({ lock, seen })),
        waits: waitList.length,
        longestWait: waitList[0] ?? null,
        waitsByKind: summarizeWaits(waitList),
      }
    },
  }
}

function summarizeWaits(waits) {
  const kinds = new Map()
  for (const w of waits) {
    const key = `${w.locktype} ${w.relation ?? ""} ${w.mode}: ${w.query}`
    const kind = kinds.get(key) ?? { kind: key, count: 0, maxMs: 0 }
    kind.count++
    kind.maxMs = Math.max(kind.maxMs, w.ms)
    kinds.set(key, kind)
  }
  return [...kinds.values()].sort((a, b) => b.maxMs - a.maxMs).slice(0, 10)
}

function loadMetrics(results) {
  const merged = autocannon.aggregateResult(results.map((r) => r.result), { url: "http://127.0.0.1" })
  const completed = results.reduce((sum, r) => sum + r.result.totalCompletedRequests, 0)
  const seconds = results.reduce((sum, r) => sum + r.result.duration, 0)
  return {
    rps: completed / seconds,
    p50: merged.latency.p50,
    p99: merged.latency.p99,
    seconds,
    completed,
    non2xx: results.reduce((sum, r) => sum + r.result.non2xx, 0),
    errors: results.reduce((sum, r) => sum + r.result.errors, 0),
  }
}

async function postLong(url) {
  const res = await fetch(url, { method: "POST", signal: AbortSignal.timeout(PRUNE_TIMEOUT_MS) })
  const text = await res.text()
  if (res.status !== 200) throw new Error(`POST ${url} answered ${res.status}: ${text.slice(0, 300)}`)
  return JSON.parse(text)
}

/**
 * Create on `backend` before, during and after the prune of every journal
 * row past retention (a day's worth in the scale seed).
 */
async function pruneWhileCreating(ctx, tools, { backend, db, dbUrl, collections, options, pluginOptions }) {
  const spec = tools.rotating(collections, (id) => tools.requestOf.session(id))
  const baseline = pruneBaselineSeconds(options)
  if (options.warmup > 0) await tools.runAutocannon(ctx, backend.url, options.warmup, spec)
  const { rows: [{ due }] } = await db.query(
    `SELECT count(*)::int AS due FROM payment_collection_attempt
      WHERE state NOT IN ('started', 'answered', 'uncertain', 'needs_attention') AND created_at < now() - make_interval(days => $1)`,
    [pluginOptions.attempt_retention_days]
  )
  tools.log(`scale: create for ${baseline} s, then while ${due} journal rows are pruned, then ${baseline} s again`)
  const before = await tools.runAutocannon(ctx, backend.url, baseline, spec)

  const sampler = startLockSampler(dbUrl)
  const started = Date.now()
  let done = false
  const pruning = postLong(`${backend.url}/bench-hooks/prune?rows=${due}`).finally(() => (done = true))
  const during = []
  while (!done && Date.now() - started < PRUNE_MAX_SECONDS * 1000) {
    during.push(await tools.runAutocannon(ctx, backend.url, 1, spec))
  }
  const coveredWholePrune = done
  const pruned = await pruning
  const locks = await sampler.stop()
  const after = await tools.runAutocannon(ctx, backend.url, baseline, spec)

  const without = loadMetrics([before, after])
  const withPrune = loadMetrics(during)
  const batchMs = pruned.batches.filter((b) => b.rows > 0).map((b) => b.ms)
  return {
    due,
    rows: pruned.rows,
    batches: batchMs.length,
    seconds: pruned.ms / 1000,
    batchMs: { mean: batchMs.reduce((a, b) => a + b, 0) / (batchMs.length || 1), max: Math.max(0, ...batchMs) },
    createWithout: without,
    createDuring: withPrune,
    p99Ratio: withPrune.p99 / without.p99,
    rpsRatio: withPrune.rps / without.rps,
    coveredWholePrune,
    ranOutOfFreshCollections: spec.exhausted,
    locks,
  }
}

module.exports = { pruneWhileCreating, pruneBaselineSeconds, PRUNE_FRESH_PER_SECOND, PRUNE_MAX_SECONDS }
