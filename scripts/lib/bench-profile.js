"use strict"

// Summarises the .cpuprofile files of `scripts/bench.js --profile <case>`:
// CPU time per request, by module ("category") and by function, self time
// (the function itself was on top of the stack) and total time (anywhere on
// the synchronous stack; async continuations start new stacks).

const path = require("path")

const REPO_ROOT = path.resolve(__dirname, "../..")
const SPECIAL = new Set(["(idle)", "(program)", "(garbage collector)", "(root)"])

function fixed(value, digits = 0) {
  return Number.isFinite(value) ? value.toFixed(digits) : "n/a"
}

function table(headers, rows) {
  const cells = [headers, ...rows].map((row) => row.map(String))
  const widths = headers.map((_, i) => Math.max(...cells.map((row) => row[i].length)))
  const line = (row) => row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join("  ")
  return [line(cells[0]), widths.map((w) => "-".repeat(w)).join("  "), ...cells.slice(1).map(line)].join("\n")
}

function filePath(url) {
  return url.startsWith("file://") ? decodeURIComponent(url.slice("file://".length)) : url
}

function nodeCategory(url) {
  const name = url.slice("node:".length)
  if (/^(_http_|http|net|internal\/(http|streams|stream_base|net|js_stream)|stream|internal\/url|url)/.test(name)) return "node: http/net/streams"
  if (/^(internal\/async_hooks|async_hooks|internal\/async_local_storage)/.test(name)) return "node: async_hooks"
  if (/^(internal\/process\/task_queues|internal\/timers|timers)/.test(name)) return "node: timers/microtasks"
  return "node: other"
}

/** Which module a frame belongs to: a package (Medusa split by folder), the plugin, node, V8. */
function categoryOf(frame) {
  const { url, functionName } = frame
  if (!url) return SPECIAL.has(functionName) ? functionName : "(v8 builtins/native)"
  if (url.startsWith("node:")) return nodeCategory(url)
  const file = filePath(url)
  const at = file.lastIndexOf("/node_modules/")
  if (at >= 0) {
    const parts = file.slice(at + "/node_modules/".length).split("/")
    const pkg = parts[0].startsWith("@") ? `${parts[0]}/${parts[1]}` : parts[0]
    if (pkg === "@medusajs/medusa" && parts[2] === "dist") {
      const dir = parts[3] === "api" ? parts.slice(3, 5).join("/") : parts[3]
      return `@medusajs/medusa ${dir.replace(/\.js$/, "")}`
    }
    return pkg
  }
  if (file.startsWith(path.join(REPO_ROOT, "dist") + "/")) return "plugin (dist/)"
  if (file.startsWith(path.join(REPO_ROOT, "scripts") + "/")) return "bench instrumentation"
  if (file.startsWith(path.join(REPO_ROOT, "integration-tests") + "/")) return "host fixtures"
  return file
}

function shortFile(url) {
  const file = filePath(url)
  const at = file.lastIndexOf("/node_modules/")
  if (at >= 0) return file.slice(at + "/node_modules/".length)
  if (file.startsWith(REPO_ROOT + "/")) return file.slice(REPO_ROOT.length + 1)
  return file
}

function functionKey(frame) {
  const name = frame.functionName || "(anonymous)"
  return frame.url ? `${name} ${shortFile(frame.url)}:${frame.lineNumber + 1}` : name
}

function addTo(map, key, ms) {
  map.set(key, (map.get(key) || 0) + ms)
}

/**
 * { wallMs, busyMs, gcMs, category: Map(name -> { self, total }), self: Map(fn -> ms), total: Map(fn -> ms) }
 * Each sample counts for the time until the next one.
 */
function analyze(profile) {
  const parent = new Map()
  for (const n of profile.nodes) for (const child of n.children || []) parent.set(child, n.id)
  const info = new Map(
    profile.nodes.map((n) => [n.id, { fn: functionKey(n.callFrame), category: categoryOf(n.callFrame), special: SPECIAL.has(n.callFrame.functionName) && !n.callFrame.url }])
  )
  const { samples, timeDeltas } = profile
  const self = new Map()
  const total = new Map()
  const categorySelf = new Map()
  const categoryTotal = new Map()
  let wallMs = 0
  let idleMs = 0
  let gcMs = 0
  for (let i = 0; i < samples.length; i++) {
    const ms = (i + 1 < timeDeltas.length ? timeDeltas[i + 1] : timeDeltas[i]) / 1000
    wallMs += ms
    const top = info.get(samples[i])
    if (top.fn === "(idle)") {
      idleMs += ms
      continue
    }
    if (top.fn === "(garbage collector)") gcMs += ms
    addTo(self, top.fn, ms)
    addTo(categorySelf, top.category, ms)
    const seenFns = new Set()
    const seenCategories = new Set()
    for (let id = samples[i]; id !== undefined; id = parent.get(id)) {
      const frame = info.get(id)
      if (frame.special && frame.fn === "(root)") continue
      if (!seenFns.has(frame.fn)) {
        seenFns.add(frame.fn)
        addTo(total, frame.fn, ms)
      }
      if (!seenCategories.has(frame.category)) {
        seenCategories.add(frame.category)
        addTo(categoryTotal, frame.category, ms)
      }
    }
  }
  const category = new Map()
  for (const [name, ms] of categoryTotal) category.set(name, { self: categorySelf.get(name) || 0, total: ms })
  return { wallMs, busyMs: wallMs - idleMs, gcMs, category, self, total }
}

function top(map, n) {
  return [...map.entries()].sort((a, b) => b[1] - a[1]).slice(0, n)
}

const perRequest = (ms, requests) => (requests > 0 ? (ms * 1000) / requests : NaN)

/**
 * The comparison as text. `runs`: { core: { analysis, requests, rps, file }, plugin: {...} }.
 * Times are CPU µs per completed request of the backend's main thread.
 */
function formatProfiles(caseTitle, runs, { topN = 15 } = {}) {
  const names = Object.keys(runs)
  const lines = [`CPU profile of ${caseTitle}`, ""]
  lines.push(
    table(
      ["backend", "req/s (profiled)", "requests", "busy % of wall", "busy µs/req", "GC µs/req", "profile"],
      names.map((name) => {
        const { analysis: a, requests, rps, file } = runs[name]
        return [name, fixed(rps, 1), requests, fixed((100 * a.busyMs) / a.wallMs, 0), fixed(perRequest(a.busyMs, requests)), fixed(perRequest(a.gcMs, requests)), file]
      })
    )
  )

  const categories = new Set(names.flatMap((name) => [...runs[name].analysis.category.keys()]))
  const rows = [...categories]
    .map((category) => {
      const values = names.map((name) => {
        const c = runs[name].analysis.category.get(category) || { self: 0, total: 0 }
        return { self: perRequest(c.self, runs[name].requests), total: perRequest(c.total, runs[name].requests) }
      })
      return { category, values }
    })
    .filter((r) => r.values.some((v) => v.self >= 5 || v.total >= 20))
    .sort((a, b) => Math.max(...b.values.map((v) => v.self)) - Math.max(...a.values.map((v) => v.self)))
  lines.push(
    "",
    "by module, CPU µs per request (self: on top of the stack; total: anywhere on the synchronous stack)",
    table(
      ["module", ...names.flatMap((n) => [`${n} self`, `${n} total`]), ...(names.length === 2 ? [`self ${names[1]}-${names[0]}`] : [])],
      rows.map(({ category, values }) => [
        category,
        ...values.flatMap((v) => [fixed(v.self), fixed(v.total)]),
        ...(names.length === 2 ? [fixed(values[1].self - values[0].self)] : []),
      ])
    )
  )
  for (const name of names) {
    const { analysis: a, requests } = runs[name]
    lines.push("", `${name}: top ${topN} functions by self time, µs per request`)
    lines.push(table(["function", "self"], top(a.self, topN).map(([fn, ms]) => [fn, fixed(perRequest(ms, requests), 1)])))
    lines.push("", `${name}: top ${topN} functions by total time, µs per request (idle, root and Node's event-loop entry points left out)`)
    const boring = /^(\(idle\)|\(program\)|\(root\)|\(garbage collector\)|processTicksAndRejections|listOnTimeout|processTimers|emit |emit$)/
    lines.push(
      table(
        ["function", "total"],
        top(new Map([...a.total].filter(([fn]) => !boring.test(fn))), topN).map(([fn, ms]) => [fn, fixed(perRequest(ms, requests), 1)])
      )
    )
  }
  return lines.join("\n")
}

module.exports = { analyze, formatProfiles, categoryOf }
