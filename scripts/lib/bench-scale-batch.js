"use strict"

// Batch growth (`npm run bench -- --scale`): one collection after the other,
// a batch of n sessions over three providers goes through what a storefront
// does with it — create the sessions, change every amount, drop half of them,
// authorize the rest (after the shopper confirmed the fake PSP's intents) —
// and each request is timed, with the SQL statements the backend sent for it
// (its SQL counter read settled before and after: the deletes a request
// stages run after its answer and count too). The batch routes take at most
// 50 sessions (MAX_BATCH_SESSIONS, src/api/store/payment-collections/validators.ts).
// With one session there is nothing to change or drop: its amount is the
// collection's, so those two steps send it unchanged.

const { httpJson, expectOk } = require("./http-json")

const BATCH_SIZES = [1, 10, 50]
/** Measured batches per size and backend, after one unmeasured. */
const BATCH_REPEATS = 5
const PROVIDERS = ["manual", "test-pay", "test-fields"]
const STEPS = ["create", "change", "drop", "authorize"]

const batchCollectionsNeeded = () => BATCH_SIZES.length * (BATCH_REPEATS + 1)

/** n amounts adding up to total, the first taking the remainder. */
function split(total, n) {
  const each = Math.floor(total / n)
  return Array.from({ length: n }, (_, i) => each + (i === 0 ? total - each * n : 0))
}

/** Every amount changed, the total kept: +1, -1, +1, ... (the last of an odd count takes the difference). */
function changed(amounts) {
  if (amounts.length === 1) return amounts
  const next = amounts.map((a, i) => a + (i % 2 === 0 ? 1 : -1))
  if (amounts.length % 2 === 1) next[next.length - 1] -= 1
  return next
}

async function step(tools, backend, method, path, body) {
  const before = await tools.settledReading(backend.counter)
  const started = process.hrtime.bigint()
  const res = await httpJson(method, backend.url + path, { body })
  const ms = Number(process.hrtime.bigint() - started) / 1e6
  if (res.status !== 200) throw new Error(`${backend.name}: ${method} ${path} answered ${res.status}: ${res.text.slice(0, 300)}`)
  const after = await tools.settledReading(backend.counter)
  return { ms, statements: after.count - before.count, body: res.body }
}

async function oneBatch(ctx, tools, backend, collectionId, n) {
  const base = `/store/payment-collections/${collectionId}/sessions/batch`
  const total = 5000
  const create = await step(tools, backend, "POST", base, {
    sessions: split(total, n).map((amount, i) => ({ provider_id: PROVIDERS[i % PROVIDERS.length], amount })),
  })
  const sessions = create.body.payment_collection.payment_sessions
  const amounts = changed(sessions.map((s) => s.amount))
  const change = await step(tools, backend, "POST", base, {
    sessions: sessions.map((s, i) => ({ provider_id: s.provider_id, amount: amounts[i], session_id: s.id })),
  })
  const kept = change.body.payment_collection.payment_sessions.slice(0, n - Math.floor(n / 2))
  const keptAmounts = split(total, kept.length)
  const drop = await step(tools, backend, "POST", base, {
    sessions: kept.map((s, i) => ({ provider_id: s.provider_id, amount: keptAmounts[i], session_id: s.id })),
  })
  // The shopper confirms at the PSP (not timed): a provider's authorize only reads.
  await expectOk("fake PSP", "POST", `${ctx.psp.url}/test/confirm`, { body: { resource_id: collectionId } })
  const authorize = await step(tools, backend, "POST", `${base}/authorize`, { session_ids: kept.map((s) => s.id) })
  return { create, change, drop, authorize }
}

const mean = (values) => values.reduce((a, b) => a + b, 0) / values.length

function summarize(runs, n) {
  const steps = Object.fromEntries(
    STEPS.map((s) => [s, { ms: mean(runs.map((run) => run[s].ms)), statements: mean(runs.map((run) => run[s].statements)) }])
  )
  return {
    sessions: n,
    steps,
    ms: STEPS.reduce((sum, s) => sum + steps[s].ms, 0),
    statements: STEPS.reduce((sum, s) => sum + steps[s].statements, 0),
  }
}

/**
 * Per backend and size: mean ms and statements of each step and of the whole
 * batch. The backends take turns batch by batch (who goes first alternating),
 * after one unmeasured batch each, so that drift lands on all of them.
 * `collections`: per backend name, batchCollectionsNeeded() of them.
 */
async function batchGrowth(ctx, tools, backends, collections) {
  const results = Object.fromEntries(backends.map((b) => [b.name, []]))
  const next = Object.fromEntries(backends.map((b) => [b.name, 0]))
  const batch = (backend, n) => oneBatch(ctx, tools, backend, collections[backend.name][next[backend.name]++], n)
  for (const n of BATCH_SIZES) {
    for (const backend of backends) await batch(backend, n)
    const runs = Object.fromEntries(backends.map((b) => [b.name, []]))
    for (let r = 0; r < BATCH_REPEATS; r++) {
      for (const backend of r % 2 === 0 ? backends : [...backends].reverse()) runs[backend.name].push(await batch(backend, n))
    }
    for (const backend of backends) {
      results[backend.name].push(summarize(runs[backend.name], n))
      const last = results[backend.name].at(-1)
      tools.log(`scale: ${backend.name} batch of ${n}: ${last.ms.toFixed(0)} ms, ${last.statements.toFixed(1)} statements`)
    }
  }
  return results
}

module.exports = { batchGrowth, batchCollectionsNeeded, BATCH_SIZES, BATCH_REPEATS, STEPS }
