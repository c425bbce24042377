"use strict"

// EXPLAIN (ANALYZE, BUFFERS) of the statements a backend sent (as captured by
// its SQL counter, with their parameters), on the full scale database: each
// inside a transaction that is rolled back (the deletes and updates among them
// change nothing), once as the database is and once without the indexes of the
// migration that adds the reconciler's indexes (dropped inside that same
// rolled-back transaction), for the statements on their tables.

const fs = require("fs")
const path = require("path")
const { REPO_ROOT } = require("./medusa-host")

const STATEMENT_TIMEOUT = "300s"

/** What each statement is, by its text. */
const LABELS = [
  [/GROUP BY payment_collection_id\s+ORDER BY min\(created_at\)/, "sweep: collections with open rows due (collectionsToReconcile)"],
  [/SET lease_until = now\(\) \+ make_interval/, "sweep: claim a collection's due rows (claimExpired)"],
  [/provider_data->>'id' AS id FROM payment_collection_attempt/, "sweep: removals under way (objectsBeingRemoved)"],
  [/SELECT ps\.data->>'id' AS id FROM payment_collection_sessions pcs/, "sweep: provider objects the collection names (namedProviderObjects)"],
  [/SET state = \$2, finished_at = now\(\)/, "sweep: close a row (finish)"],
  [/SET recovery_attempts = recovery_attempts \+ 1/, "sweep: retry a step later (retryLater)"],
  [/SET state = 'needs_attention'/, "sweep: flag for attention"],
  [/state = 'started' AND lease_until > now\(\)/, "journal: calls in flight (inFlight)"],
  [/WHERE id = ANY\(\$1\) AND state IN/, "journal: a request's open rows (rows)"],
  [/DELETE FROM payment_collection_attempt\s+WHERE id IN/, "retention: a batch of journal rows (deleteFinished)"],
  [/DELETE FROM idempotency_key/, "retention: expired Idempotency-Keys (deleteExpired)"],
  [/FROM payment_session ps\s+JOIN payment_collection_sessions pcs/, "status sync: sessions due a question (sessionsToCheck)"],
  [/DELETE FROM payment_collection_status_check/, "status sync: its bookkeeping's retention (pruneStatusChecks)"],
  [/DELETE FROM payment_collection_provider_event/, "retention: provider events (pruneProviderEvents)"],
  [/WHERE payment_collection_id = \$1\) AS count/, "attempt log: one collection (listAttempts)"],
  [/WHERE state = \$1\) AS count/, "attempt log: one state, all collections (listAttemptsInState)"],
]

/**
 * An index the migration does not add, measured in a rolled-back transaction:
 * what it would do for the count of a closed state of the attempt log (the
 * whole journal's rows of that state), against its cost on every journal write.
 */
const CANDIDATES = [
  {
    name: "IDX_candidate_attempt_state",
    table: "payment_collection_attempt",
    definition: `("state", "created_at" DESC, "id" DESC)`,
    appliesTo: /WHERE state = \$1\) AS count/,
    when: (values) => !["started", "answered", "uncertain", "needs_attention"].includes(values[0]),
  },
]

const oneLine = (text) => text.replace(/\s+/g, " ").trim()

function labelOf(text, values) {
  const found = LABELS.find(([pattern]) => pattern.test(oneLine(text)))
  const label = found ? found[1] : oneLine(text).slice(0, 70)
  return /listAttemptsInState/.test(label) ? `${label}, state=${values[0]}` : label
}

/** SELECT/WITH/UPDATE/DELETE statements, but not calls of the plugin's functions (whose plans EXPLAIN does not show). */
function explainable(text) {
  const t = oneLine(text)
  if (!/^(SELECT|WITH|UPDATE|DELETE)\b/i.test(t)) return false
  if (/\bpcp_\w+_v\d+\s*\(/.test(t) || /^SELECT set_config\(/i.test(t)) return false
  return true
}

/** The indexes the newest migration that declares INDEXES creates (dist/migrations). */
function reconcilerIndexes() {
  const dir = path.join(REPO_ROOT, "dist", "migrations")
  const declared = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".js"))
    .sort()
    .flatMap((f) => Object.values(require(path.join(dir, f))))
    .filter((m) => typeof m === "function" && Array.isArray(m.INDEXES))
  const newest = declared.at(-1)
  return newest ? { migration: new newest().name, indexes: newest.INDEXES } : { migration: null, indexes: [] }
}

function summarize(plan) {
  const ms = Number((plan.match(/Execution Time: ([\d.]+) ms/) || [])[1])
  const scans = [
    ...new Set(
      [...plan.matchAll(/(Seq Scan on \S+|Index Only Scan(?: Backward)? using \S+ on \S+|Index Scan(?: Backward)? using \S+ on \S+|Bitmap Heap Scan on \S+)/g)].map(
        (m) => m[1].replace(/"/g, "")
      )
    ),
  ]
  const buffers = (plan.match(/Buffers: ([^\n]+)/) || [])[1] || ""
  return { ms, scans, buffers }
}

async function inRollback(db, fn) {
  await db.query("BEGIN")
  try {
    await db.query(`SET LOCAL statement_timeout = '${STATEMENT_TIMEOUT}'`)
    return await fn()
  } finally {
    await db.query("ROLLBACK")
  }
}

/**
 * EXPLAIN ANALYZE in a rolled-back transaction after `prepare` (there too),
 * twice (unless told not to warm up), the second one kept: the first warms the cache as the pass that ran
 * the statement just did. Each in a transaction of its own, so a DELETE is
 * measured deleting what it deletes.
 */
async function explainTwice(db, text, values, prepare, { warm = true } = {}) {
  const once = () =>
    inRollback(db, async () => {
      await prepare()
      return await explainIn(db, text, values)
    })
  if (warm) await once()
  return await once()
}

async function explainIn(db, text, values) {
  const { rows } = await db.query(`EXPLAIN (ANALYZE, BUFFERS) ${text}`, values)
  return rows.map((r) => r["QUERY PLAN"]).join("\n")
}

const touches = (text, table) => new RegExp(`\\b${table}\\b`).test(text)

/**
 * `statements`: [{ text, values }], explained once each (the first of those
 * with the same text, except the attempt log's, explained per state).
 * Answers [{ label, text, values, plan, summary, without: { plan, summary } | null }].
 */
async function explainAll(db, statements, { indexes }, log) {
  const seen = new Set()
  const results = []
  for (const { text, values } of statements) {
    const key = /WHERE state = \$1\) AS count/.test(text) ? text + JSON.stringify(values) : text
    if (seen.has(key) || !explainable(text)) continue
    seen.add(key)
    const label = labelOf(text, values)
    try {
      const plan = await explainTwice(db, text, values, () => undefined)
      const dropped = indexes.filter((index) => touches(text, index.table))
      const without = dropped.length
        ? await explainTwice(db, text, values, async () => {
            for (const index of dropped) await db.query(`DROP INDEX "${index.name}"`)
          })
        : null
      const candidate = CANDIDATES.find((c) => c.appliesTo.test(oneLine(text)) && c.when(values))
      const withCandidate = candidate
        ? // Once: the index just built is in the cache, and building it takes a while.
          await explainTwice(db, text, values, () => db.query(`CREATE INDEX "${candidate.name}" ON "${candidate.table}" ${candidate.definition}`), { warm: false })
        : null
      results.push({
        label,
        text: oneLine(text),
        values,
        plan,
        summary: summarize(plan),
        without: without && { indexes: dropped.map((i) => i.name), plan: without, summary: summarize(without) },
        candidate: withCandidate && { index: `${candidate.name} ON ${candidate.table} ${candidate.definition}`, plan: withCandidate, summary: summarize(withCandidate) },
      })
    } catch (err) {
      log(`EXPLAIN of "${label}" failed: ${err.message}`)
      results.push({ label, text: oneLine(text), values, error: err.message })
    }
  }
  return results
}

/** How long each index takes to build on the full tables (dropped and built again, rolled back). */
async function timeIndexBuilds(db, { indexes }) {
  const builds = []
  for (const index of indexes) {
    const ms = await inRollback(db, async () => {
      await db.query(`DROP INDEX "${index.name}"`)
      const started = process.hrtime.bigint()
      await db.query(`CREATE INDEX "${index.name}" ON "${index.table}" ${index.definition}`)
      return Number(process.hrtime.bigint() - started) / 1e6
    })
    builds.push({ name: index.name, table: index.table, ms })
  }
  return builds
}

module.exports = { explainAll, reconcilerIndexes, timeIndexBuilds }
