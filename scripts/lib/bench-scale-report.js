"use strict"

// Tables, targets and the JSON of `npm run bench -- --scale` (bench-scale.js).

const { fixed } = require("./bench-report")

const TARGETS = { rps: 0.9, p99: 1.2, passMs: 2000, batchGrowth: 25, pruneP99: 1.2 }

function table(headers, rows) {
  const cells = [headers, ...rows].map((row) => row.map(String))
  const widths = headers.map((_, i) => Math.max(...cells.map((row) => row[i].length)))
  const line = (row) => row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join("  ")
  return [line(cells[0]), widths.map((w) => "-".repeat(w)).join("  "), ...cells.slice(1).map(line)].join("\n")
}

const ratio = (a, b) => (b > 0 && Number.isFinite(a) ? a / b : NaN)
const x = (value) => `${fixed(value, 2)}x`
const int = (value) => (Number.isFinite(value) ? Math.round(value).toLocaleString("en-US") : "n/a")

function caseRatios(c) {
  return { rps: ratio(c.full.rps, c.empty.rps), p99: ratio(c.full.p99, c.empty.p99) }
}

function formatCases(cases) {
  return table(
    ["case", "req/s empty", "req/s full", "full/empty", "rounds full/empty", "p50 ms", "p99 ms", "p99 full/empty", "SQL/req", "CPU ms/req", "PG CPU ms/req", "non-2xx"],
    cases.map((c) => {
      const r = caseRatios(c)
      const rounds = c.empty.rounds.map((round, i) => ratio(c.full.rounds[i]?.rps, round.rps)).filter(Number.isFinite)
      return [
        c.id,
        fixed(c.empty.rps),
        fixed(c.full.rps),
        x(r.rps),
        rounds.length ? `${fixed(Math.min(...rounds), 2)}-${fixed(Math.max(...rounds), 2)}x` : "n/a",
        `${fixed(c.empty.p50, 0)} → ${fixed(c.full.p50, 0)}`,
        `${fixed(c.empty.p99, 0)} → ${fixed(c.full.p99, 0)}`,
        x(r.p99),
        `${fixed(c.empty.sqlPerRequest, 2)} → ${fixed(c.full.sqlPerRequest, 2)}`,
        `${fixed(c.empty.cpuMsPerRequest, 2)} → ${fixed(c.full.cpuMsPerRequest, 2)}`,
        `${fixed(c.empty.postgresCpuMsPerRequest, 2)} → ${fixed(c.full.postgresCpuMsPerRequest, 2)}`,
        `${c.empty.non2xx} / ${c.full.non2xx}`,
      ]
    })
  )
}

function formatPass(pass) {
  return table(
    ["database", "pass ms", "sweep ms", "collections", "rows settled", "busy", "status sync ms (adopted)", "prune ms (rows)", "key expiry ms (keys)", "events ms (rows)", "SQL statements"],
    Object.entries(pass).map(([name, p]) => [
      name,
      fixed(p.totalMs, 0),
      fixed(p.ms.sweep, 0),
      p.swept.collections,
      p.swept.finished,
      p.swept.skipped,
      `${fixed(p.ms.statusSync, 0)} (${p.adopted})`,
      `${fixed(p.ms.prune, 0)} (${p.attempts})`,
      `${fixed(p.ms.keys, 0)} (${p.keys})`,
      `${fixed(p.ms.events, 0)} (${p.events})`,
      p.statementCount,
    ])
  )
}

function formatBatch(batch) {
  const rows = []
  for (const [name, sizes] of Object.entries(batch)) {
    const one = sizes.find((s) => s.sessions === 1)
    for (const s of sizes) {
      rows.push([
        name,
        s.sessions,
        ...["create", "change", "drop", "authorize"].map((step) => `${fixed(s.steps[step].ms, 0)} ms / ${fixed(s.steps[step].statements, 1)}`),
        fixed(s.ms, 0),
        fixed(s.statements, 1),
        one ? `${x(ratio(s.ms, one.ms))} / ${x(ratio(s.statements, one.statements))}` : "n/a",
      ])
    }
  }
  return table(["database", "sessions", "create (ms / SQL)", "change every amount", "drop half", "authorize all", "batch ms", "batch SQL", "vs 1 session (ms / SQL)"], rows)
}

function formatAttemptLog(attemptLog) {
  return table(
    ["admin read", "empty ms", "full ms", "count (full)"],
    attemptLog.full.map((read, i) => [read.id, fixed(attemptLog.empty[i]?.ms, 1), fixed(read.ms, 1), int(read.count)])
  )
}

function formatPrune(prune) {
  const lines = [
    `pruned ${int(prune.rows)} of ${int(prune.due)} rows past retention in ${prune.batches} batches, ${fixed(prune.seconds, 1)} s ` +
      `(a batch: ${fixed(prune.batchMs.mean, 0)} ms on average, ${fixed(prune.batchMs.max, 0)} ms at most)`,
    table(
      ["create", "req/s", "p50 ms", "p99 ms", "non-2xx", "seconds"],
      [
        ["without a prune (before and after)", fixed(prune.createWithout.rps), fixed(prune.createWithout.p50, 0), fixed(prune.createWithout.p99, 0), prune.createWithout.non2xx, fixed(prune.createWithout.seconds, 1)],
        ["during the prune", fixed(prune.createDuring.rps), fixed(prune.createDuring.p50, 0), fixed(prune.createDuring.p99, 0), prune.createDuring.non2xx, fixed(prune.createDuring.seconds, 1)],
      ]
    ),
    `during/without: req/s ${x(prune.rpsRatio)}, p99 ${x(prune.p99Ratio)}${prune.coveredWholePrune ? "" : " (create measured for only part of the prune)"}` +
      `${prune.ranOutOfFreshCollections ? " — WARNING: create ran out of fresh collections" : ""}`,
    `locks the prune's statements held (${prune.locks.pruneSamples} of ${prune.locks.samples} samples, every ${prune.locks.intervalMs} ms, saw one running): ` +
      (prune.locks.pruneHolds.map((h) => h.lock).join(", ") || "none seen"),
    prune.locks.waits
      ? `lock waits seen during the prune: ${prune.locks.waits}, the longest ${prune.locks.longestWait.ms} ms (${prune.locks.longestWait.locktype} ${prune.locks.longestWait.relation ?? ""} ${prune.locks.longestWait.mode}: ${prune.locks.longestWait.query})\n` +
        prune.locks.waitsByKind.map((k) => `  ${k.count}x up to ${k.maxMs} ms: ${k.kind}`).join("\n")
      : "lock waits seen during the prune: none",
  ]
  return lines.join("\n")
}

function formatDrain(drain) {
  const open = drain.openAfter.map((r) => `${r.rows} ${r.state}${r.due ? " (due)" : " (backing off)"}`).join(", ") || "none"
  return (
    `draining the open rows: ${drain.passes} passes settled ${drain.settled} rows in ${fixed(drain.seconds, 1)} s ` +
    `(the longest pass ${fixed(drain.maxPassMs, 0)} ms)${drain.complete ? "" : " — stopped before the end"}; open afterwards: ${open}`
  )
}

function formatExplainSummary(explains) {
  const plan = (summary) => `${fixed(summary.ms, 2)} ms  ${summary.scans.join(", ") || "-"}  (${summary.buffers})`
  return explains
    .map((e) => {
      if (e.error) return `${e.label}\n    EXPLAIN failed: ${e.error}`
      const lines = [`${e.label}`, `    ${plan(e.summary)}`]
      if (e.without) lines.push(`    without ${e.without.indexes.join(", ")}: ${plan(e.without.summary)}`)
      if (e.candidate) lines.push(`    with a candidate index ${e.candidate.index} (not in the migration): ${plan(e.candidate.summary)}`)
      return lines.join("\n")
    })
    .join("\n")
}

function formatExplainPlans(explains = []) {
  return explains
    .filter((e) => !e.error)
    .map((e) => {
      const head = `-- ${e.label}\n-- ${e.text.slice(0, 400)}\n-- parameters: ${JSON.stringify(e.values).slice(0, 300)}`
      const without = e.without ? `\n-- without ${e.without.indexes.join(", ")}:\n${e.without.plan}` : ""
      const candidate = e.candidate ? `\n-- with the candidate index ${e.candidate.index}:\n${e.candidate.plan}` : ""
      return `${head}\n${e.plan}${without}${candidate}`
    })
    .join("\n\n")
}

function evaluate(scale) {
  const targets = []
  for (const c of scale.cases ?? []) {
    const r = caseRatios(c)
    targets.push({ case: `scale ${c.id}`, name: `req/s on the full tables >= ${TARGETS.rps}x the empty database's`, met: r.rps >= TARGETS.rps, measured: x(r.rps) })
    targets.push({ case: `scale ${c.id}`, name: `p99 on the full tables <= ${TARGETS.p99}x the empty database's`, met: r.p99 <= TARGETS.p99, measured: x(r.p99) })
    targets.push({ case: `scale ${c.id}`, name: "0 non-2xx on the full tables", met: c.full.non2xx === 0 && c.full.errors === 0, measured: `${c.full.non2xx} non-2xx, ${c.full.errors} errors` })
  }
  const pass = scale.pass?.full
  if (pass) {
    targets.push({ case: "scale reconcile", name: `one reconciler pass over the open rows < ${TARGETS.passMs / 1000} s`, met: pass.totalMs < TARGETS.passMs, measured: `${fixed(pass.totalMs, 0)} ms, ${pass.swept.finished} rows settled on ${pass.swept.collections} collections` })
  }
  const one = scale.batch?.full.find((s) => s.sessions === 1)
  const fifty = scale.batch?.full.find((s) => s.sessions === 50)
  if (one && fifty) {
    targets.push({ case: "scale batch", name: `a 50-session batch < ${TARGETS.batchGrowth}x a 1-session batch (time)`, met: fifty.ms < TARGETS.batchGrowth * one.ms, measured: `${x(ratio(fifty.ms, one.ms))} (${fixed(fifty.ms, 0)} ms vs ${fixed(one.ms, 0)} ms)` })
  }
  if (scale.prune) {
    targets.push({ case: "scale retention", name: `create's p99 while a day's worth is pruned <= ${TARGETS.pruneP99}x without`, met: scale.prune.p99Ratio <= TARGETS.pruneP99, measured: `${x(scale.prune.p99Ratio)} (${fixed(scale.prune.createDuring.p99, 0)} ms vs ${fixed(scale.prune.createWithout.p99, 0)} ms)` })
  }
  return targets
}

function formatSeed(s) {
  const mb = (bytes) => `${fixed(bytes / 1024 / 1024, 0)} MB`
  return [
    `full: ${int(s.counts.collections)} payment collections, ${int(s.counts.sessions)} sessions, ${int(s.counts.payments)} payments, ` +
      `journal ${int(s.counts.closed_attempts)} closed rows (${int(s.counts.prune_due)} past retention) and ${int(s.counts.open_attempts)} open, ` +
      `${int(s.counts.keys)} pcp: Idempotency-Keys, ${int(s.counts.status_checks)} status checks, ${int(s.counts.provider_events)} provider events; ` +
      `database ${mb(s.counts.database_bytes)}, seeded in ${fixed(s.seconds, 0)} s`,
    `open rows: ${Object.entries(s.open).map(([k, v]) => `${v} ${k}`).join(", ")}`,
  ].join("\n")
}

function format(scale) {
  const sections = [
    `Scale (--scale, factor ${scale.factor}): the plugin on an empty database ("empty": the bench's seed) and on full tables ("full": the same seed and a busy merchant's)`,
  ]
  const add = (title, value, render) => {
    if (value) sections.push("", ...(title ? [title] : []), render(value))
  }
  if (scale.seed) sections.push(formatSeed(scale.seed))
  if (scale.cases?.length) sections.push("", formatCases(scale.cases))
  add("one reconciler pass (what the timer runs: sweep, status sync, journal retention, key expiry, event retention)", scale.pass, formatPass)
  if (scale.drain) sections.push(formatDrain(scale.drain))
  add(`batch growth (mean of ${scale.batchRepeats} batches per size; providers manual, test-pay, test-fields in turn; at most 50 sessions per batch)`, scale.batch, formatBatch)
  add("the admin's attempt log", scale.attemptLog, formatAttemptLog)
  add("retention while create runs (full database)", scale.prune, formatPrune)
  add(null, scale.indexBuilds, (builds) =>
    `building the new indexes on the full tables (${scale.indexMigration ?? "no migration declares INDEXES"}): ` +
    (builds.map((b) => `${b.name} on ${b.table} ${fixed(b.ms, 0)} ms`).join(", ") || "none")
  )
  add("EXPLAIN (ANALYZE, BUFFERS) of the pass's and the attempt log's queries on the full database (plans in full below)", scale.explains, formatExplainSummary)
  if (scale.failures?.length) sections.push("", "scale steps that failed:", ...scale.failures.map((f) => `  ${f}`))
  return sections.join("\n")
}

function json(scale, targets) {
  const { explains, seed, cases, ...rest } = scale
  return {
    ...rest,
    seed: seed && { factor: seed.factor, sizes: seed.sizes, open: seed.open, counts: seed.counts, seconds: seed.seconds },
    cases: (cases ?? []).map((c) => ({ id: c.id, empty: c.empty, full: c.full, ratio: caseRatios(c) })),
    explains: (explains ?? []).map((e) => ({
      label: e.label,
      error: e.error,
      ms: e.summary?.ms,
      scans: e.summary?.scans,
      withoutNewIndexes: e.without && { ms: e.without.summary.ms, scans: e.without.summary.scans },
      withCandidateIndex: e.candidate && { index: e.candidate.index, ms: e.candidate.summary.ms, scans: e.candidate.summary.scans },
    })),
    targets,
  }
}

module.exports = { format, formatExplainPlans, evaluate, json }
