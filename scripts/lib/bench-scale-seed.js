"use strict"

// The "full" database of `npm run bench -- --scale`: what a busy merchant's
// database holds after a while, written in SQL (INSERT ... SELECT
// generate_series) into the plugin's real tables, in the shapes the plugin
// writes them. At factor 1:
//   - 200,000 payment collections spread over the last attempt_retention_days
//     + 1 days (about 6,500 a day): 70 % authorized, 15 % not_paid, 3 %
//     awaiting, 1 % partially_authorized, 11 % canceled (a declined edit);
//     a fifth of them split over two sessions; providers manual 30 %,
//     test-pay 50 %, test-fields 20 %; one payment per authorized session
//     (60 % of them captured, a canceled collection's canceled);
//   - the attempt journal: 5,000,000 closed rows over the same days (25 per
//     collection, clustered in time with it; the oldest day's worth is past
//     attempt_retention_days, i.e. due for the prune), and 10,000 open rows
//     left by a provider outage earlier today (see OPEN_MIX);
//   - idempotency_key: 1,000,000 `pcp:` keys over the last
//     idempotency_key_ttl_seconds, answered (their stored answer is a real
//     answer of the backend), the oldest minute's worth expired;
//   - the status sync's bookkeeping for the pending sessions of the last
//     status_sync_window_hours, and one provider event per authorized
//     collection paid through the fake PSP.
// The fake PSP gets the intents that the rows a reconcile pass acts on name
// (open deletes at test-pay, pending sessions the status sync asks about), so
// that the pass does real work against it instead of failing on unknown ids.
// Not seeded: carts and their payment sessions (core's payment_session also
// holds those in a real store), orders and order edits.

const http = require("http")

const FULL = { collections: 200_000, finished: 5_000_000, open: 10_000, keys: 1_000_000 }
const FINISHED_CHUNK = 1_000_000
const AMOUNT = 5000
const CURRENCY = "usd"
const PSP_PROVIDERS = ["test-pay", "test-fields"]
const PSP_CONCURRENCY = 8

/**
 * The open rows, as a provider outage leaves them (fractions of `open`):
 * initiates that timed out at test-pay (the finder settles them), staged
 * deletes of removed sessions the provider did not take then (manual, and
 * test-pay with a live intent), status reads whose request died, all due;
 * and initiates at test-nofind (no finder) flagged needs_attention, retried
 * with backoff, not due yet.
 */
const OPEN_MIX = [
  { kind: "initiate_uncertain", share: 0.4 },
  { kind: "delete_manual", share: 0.25 },
  { kind: "delete_psp", share: 0.15 },
  { kind: "status_answered", share: 0.1 },
  { kind: "needs_attention", share: 0.1 },
]

const sizesFor = (factor) => Object.fromEntries(Object.entries(FULL).map(([k, v]) => [k, Math.max(1, Math.round(v * factor))]))

// A Medusa-like id: <prefix>_ + 12 hex digits of the time in ms + 14 of a hash
// (time-ordered like core's ULIDs, so B-tree inserts land as they do in life).
const ID_FUNCTION = `
  CREATE OR REPLACE FUNCTION pg_temp.bench_id(prefix text, t timestamptz, salt text) RETURNS text
  LANGUAGE sql IMMUTABLE AS $$
    SELECT prefix || '_' || upper(lpad(to_hex((extract(epoch FROM t) * 1000)::bigint), 12, '0') || substr(md5(salt), 1, 14))
  $$`
const UUID_FUNCTION = `
  CREATE OR REPLACE FUNCTION pg_temp.bench_uuid(salt text) RETURNS text
  LANGUAGE sql IMMUTABLE AS $$
    SELECT regexp_replace(md5(salt), '(.{8})(.{4})(.{4})(.{4})(.{12})', '\\1-\\2-\\3-\\4-\\5')
  $$`
// The session data the test providers store (psp-client.js sessionData), or manual's.
const SESSION_DATA = `
  CREATE OR REPLACE FUNCTION pg_temp.bench_data(provider text, id text, amount int, status text) RETURNS jsonb
  LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN provider = 'manual' THEN jsonb_build_object('status', status)
           ELSE jsonb_build_object('id', 'pi_' || substr(md5(id), 1, 24), 'amount', amount, 'status', status,
                                   'client_secret', 'pi_' || substr(md5(id), 1, 24) || '_secret_' || substr(md5(id || 's'), 1, 24))
           END
  $$`
const PROVIDER_OF = (g) => `(CASE WHEN ${g} % 10 < 3 THEN 'manual' WHEN ${g} % 10 < 8 THEN 'test-pay' ELSE 'test-fields' END)`

async function timed(log, what, fn) {
  const started = Date.now()
  const result = await fn()
  log(`scale seed: ${what} in ${((Date.now() - started) / 1000).toFixed(1)} s`)
  return result
}

async function seedCollections(db, p) {
  await db.query(
    `CREATE TEMP TABLE scale_collection AS
     SELECT g, pg_temp.bench_id('paycol', t, 'c' || g) AS id, t AS created_at, status,
            CASE WHEN g % 5 = 0 OR status = 'partially_authorized' THEN 2 ELSE 1 END AS sessions,
            pg_temp.bench_id('ps', t + interval '1 second', 's' || g || '_1') AS session_id,
            ${PROVIDER_OF("(g + 1)")} AS provider_id
       -- The newest ten minutes old: its journal rows (up to 8 minutes after it) are in the past.
       FROM (SELECT g, $1::timestamptz - interval '10 minutes' - make_interval(secs => $2::float8 * (1 - g::float8 / $3::int)) AS t,
                    CASE WHEN g % 100 < 70 THEN 'authorized' WHEN g % 100 < 85 THEN 'not_paid'
                         WHEN g % 100 < 88 THEN 'awaiting' WHEN g % 100 = 88 THEN 'partially_authorized'
                         ELSE 'canceled' END AS status
               FROM generate_series(1, $3::int) g) s`,
    [p.base, p.windowSeconds, p.sizes.collections]
  )
  await db.query(`ALTER TABLE scale_collection ADD PRIMARY KEY (g)`)
  await db.query(
    `INSERT INTO payment_collection
       (id, created_at, updated_at, type, status, description, amount, authorized_amount, region_id, currency_code, created_by)
     SELECT id, created_at, created_at + CASE WHEN status IN ('not_paid', 'awaiting') THEN interval '1 minute' ELSE interval '10 minutes' END,
            'order_edit', status::"PAYMENT_COLLECTION_STATUS_ENUM", 'Order edit payment', $1,
            CASE status WHEN 'authorized' THEN $1 WHEN 'partially_authorized' THEN $1 / 2 WHEN 'canceled' THEN $1 ELSE NULL END,
            $2, $3, 'usr_scale_admin'
       FROM scale_collection`,
    [AMOUNT, p.regionId, CURRENCY]
  )
}

async function seedSessionsAndPayments(db, p) {
  await db.query(
    `CREATE TEMP TABLE scale_session AS
     SELECT c.g, j, c.created_at,
            CASE WHEN j = 1 THEN c.session_id ELSE pg_temp.bench_id('ps', c.created_at + j * interval '1 second', 's' || c.g || '_' || j) END AS id,
            ${PROVIDER_OF("(c.g + j)")} AS provider_id, $1 / c.sessions AS amount,
            CASE c.status WHEN 'authorized' THEN 'authorized' WHEN 'not_paid' THEN 'pending'
                 WHEN 'awaiting' THEN 'requires_more' WHEN 'canceled' THEN 'canceled'
                 ELSE CASE WHEN j = 1 THEN 'authorized' ELSE 'pending' END END AS status,
            c.status = 'authorized' AND c.g % 10 < 6 AND c.created_at < $2::timestamptz - interval '2 days' AS captured
       FROM scale_collection c CROSS JOIN LATERAL generate_series(1, c.sessions) j`,
    [AMOUNT, p.base]
  )
  await db.query(
    `INSERT INTO payment_session (id, cart_id, provider_id, is_selected, status, data, created_at, updated_at,
                                  payment_authorized_at, amount, is_initiated)
     SELECT id, NULL, provider_id, NULL, status::payment_session_status_enum,
            pg_temp.bench_data(provider_id, id, amount, CASE WHEN captured THEN 'captured' ELSE status END),
            created_at, created_at + CASE WHEN status IN ('pending', 'requires_more') THEN interval '1 minute' ELSE interval '5 minutes' END,
            CASE WHEN status = 'authorized' OR status = 'canceled' THEN created_at + interval '5 minutes' END, amount, true
       FROM scale_session`
  )
  await db.query(
    `INSERT INTO payment_collection_sessions (payment_collection_id, payment_session_id)
     SELECT c.id, s.id FROM scale_session s JOIN scale_collection c USING (g)`
  )
  await db.query(
    `CREATE TEMP TABLE scale_payment AS
     SELECT s.g, pg_temp.bench_id('pay', s.created_at + interval '5 minutes', 'p' || s.id) AS id, s.id AS session_id,
            s.provider_id, s.amount, s.status, s.captured, s.created_at + interval '5 minutes' AS created_at
       FROM scale_session s WHERE s.status IN ('authorized', 'canceled')`
  )
  await db.query(
    `INSERT INTO payment (id, amount, currency_code, amount_refunded, provider_id, data, captured_at, canceled_at, created_at, updated_at)
     SELECT id, amount, $1, 0, provider_id,
            pg_temp.bench_data(provider_id, session_id, amount, CASE WHEN captured THEN 'captured' WHEN status = 'canceled' THEN 'canceled' ELSE 'authorized' END),
            CASE WHEN captured THEN created_at + interval '2 days' END,
            CASE WHEN status = 'canceled' THEN created_at + interval '1 hour' END,
            created_at, created_at + CASE WHEN captured THEN interval '2 days' ELSE interval '1 hour' END
       FROM scale_payment`,
    [CURRENCY]
  )
  await db.query(
    `INSERT INTO payment_collection_payments (payment_collection_id, payment_id)
     SELECT c.id, p.id FROM scale_payment p JOIN scale_collection c USING (g)`
  )
}

// One closed journal row: its collection (25 rows each, in time order), call and outcome.
const FINISHED_ROWS = `
  INSERT INTO payment_collection_attempt
    (id, payment_collection_id, payment_session_id, provider_id, operation, state, outcome, error_code, error_message,
     amount, currency_code, provider_data, request_id, idempotency_key, process, lease_until, recovery_attempts,
     resolved_by, created_at, answered_at, finished_at, latency_ms, attention_at)
  SELECT pg_temp.bench_id('pcatt', t, 'a' || i), c.id, CASE WHEN op = 'find' THEN NULL ELSE c.session_id END,
         c.provider_id, op, state, CASE WHEN state = 'failed' THEN 'refused' ELSE 'ok' END,
         CASE WHEN state = 'failed' THEN 'card_declined' END,
         CASE WHEN state = 'failed' THEN 'Your card was declined.' END,
         $3 / c.sessions, $4,
         CASE WHEN op IN ('initiate', 'update', 'authorize', 'delete') THEN pg_temp.bench_data(c.provider_id, c.session_id, $3 / c.sessions, 'pending') END,
         pg_temp.bench_uuid('r' || (i / 3)), CASE WHEN i % 3 = 0 THEN pg_temp.bench_uuid('k' || i) END,
         'bench-host-' || (i % 4) || ':' || (2000 + i % 4) || ':' || substr(md5((i % 4)::text), 1, 8),
         t + interval '40 seconds', 0,
         CASE state WHEN 'committed' THEN 'request' WHEN 'failed' THEN 'request' WHEN 'resolved' THEN 'admin:usr_scale_admin'
                    ELSE 'reconciler:bench-host-0:2000:' || substr(md5('0'), 1, 8) END,
         t, t + make_interval(secs => latency / 1000.0), t + make_interval(secs => (latency + 3) / 1000.0), latency,
         CASE WHEN state = 'resolved' THEN t + interval '1 day' END
    FROM generate_series($1::bigint, $2::bigint) AS n(i)
    JOIN scale_collection c ON c.g = 1 + ((i - 1) * $5::bigint / $6)::int
    CROSS JOIN LATERAL (
      SELECT c.created_at + ((i - 1) % 25)::int * interval '20 seconds' AS t,
             (ARRAY['initiate','initiate','initiate','initiate','initiate','initiate','initiate','initiate',
                    'authorize','authorize','authorize','authorize','authorize','update','update',
                    'status','status','delete','delete','find'])[(1 + i % 20)::int] AS op,
             40 + (i * 37) % 760 AS latency) r
    CROSS JOIN LATERAL (
      SELECT CASE WHEN r.op IN ('find', 'status') THEN 'undone'
                  WHEN (i * 7) % 200 < 170 THEN 'committed' WHEN (i * 7) % 200 < 186 THEN 'failed'
                  WHEN (i * 7) % 200 < 196 THEN 'undone' WHEN (i * 7) % 200 < 199 THEN 'adopted'
                  ELSE 'resolved' END AS state) st`

async function seedFinished(db, p, log) {
  const total = p.sizes.finished
  for (let from = 1; from <= total; from += FINISHED_CHUNK) {
    const to = Math.min(total, from + FINISHED_CHUNK - 1)
    await timed(log, `journal rows ${from}-${to} of ${total}`, () =>
      db.query(FINISHED_ROWS, [from, to, AMOUNT, CURRENCY, p.sizes.collections, total])
    )
  }
}

/** POSTs to the fake PSP as `provider` would (initiatePayment), a few at a time. */
async function createIntents(pspUrl, items) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: PSP_CONCURRENCY })
  const post = (item) =>
    new Promise((resolve, reject) => {
      const body = JSON.stringify({ amount: item.amount, currency_code: CURRENCY, resource_id: item.collectionId, args: [] })
      const req = http.request(`${pspUrl}/v1/intents`, {
        method: "POST",
        agent,
        headers: { "content-type": "application/json", "x-psp-caller": item.provider, "x-psp-caller-pid": String(process.pid) },
      })
      req.on("response", (res) => {
        let text = ""
        res.on("data", (c) => (text += c))
        res.on("end", () => (res.statusCode === 200 ? resolve(JSON.parse(text)) : reject(new Error(`fake PSP: ${res.statusCode} ${text}`))))
      })
      req.on("error", reject)
      req.end(body)
    })
  const intents = new Array(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const i = next++
      intents[i] = await post(items[i])
    }
  }
  await Promise.all(Array.from({ length: PSP_CONCURRENCY }, worker))
  agent.destroy()
  return intents
}

const intentData = (intent) => ({ id: intent.id, amount: intent.amount, status: intent.status, client_secret: intent.client_secret })

/** Counts of each kind of open row, summing to `open`. */
function openCounts(open) {
  const counts = OPEN_MIX.map(({ kind, share }) => ({ kind, count: Math.floor(open * share) }))
  counts[0].count += open - counts.reduce((sum, c) => sum + c.count, 0)
  return Object.fromEntries(counts.map((c) => [c.kind, c.count]))
}

const OPEN_ROW = `
  INSERT INTO payment_collection_attempt
    (id, payment_collection_id, payment_session_id, provider_id, operation, state, outcome, error_code, error_message,
     amount, currency_code, provider_data, request_id, process, lease_until, recovery_attempts, next_attempt_at,
     created_at, answered_at, latency_ms, attention_at)
  SELECT pg_temp.bench_id('pcatt', o.t, 'o' || $1 || o.n), c.id, o.session_id, o.provider_id, o.operation, o.state,
         o.outcome, o.error_code, o.error_message, $3 / c.sessions, $4, o.provider_data, pg_temp.bench_uuid('ro' || $1 || o.n),
         'bench-host-1:2001:' || substr(md5('1'), 1, 8), o.t + interval '40 seconds', o.attempts,
         CASE WHEN o.state = 'needs_attention' THEN $2::timestamptz + interval '30 minutes' ELSE $2::timestamptz - interval '1 minute' END,
         o.t, o.t + interval '20 seconds', 20000, CASE WHEN o.state = 'needs_attention' THEN o.t + interval '1 minute' END
    FROM jsonb_to_recordset($5::jsonb) AS o(n int, c_g int, t timestamptz, session_id text, provider_id text, operation text,
         state text, outcome text, error_code text, error_message text, provider_data jsonb, attempts int)
    JOIN scale_collection c ON c.g = o.c_g`

/**
 * The open rows, on the collections of the last hours (two per collection),
 * due now (their backoff over) except the needs_attention ones.
 */
async function seedOpen(db, p) {
  const counts = openCounts(p.sizes.open)
  const recent = Math.min(p.sizes.collections, Math.max(1, Math.ceil(p.sizes.open / 2)))
  // Collections at least six hours old: older than their open rows.
  const skip = Math.min(p.sizes.collections - recent, Math.ceil((6 * 3600 * p.sizes.collections) / p.windowSeconds))
  const base = new Date(p.base).getTime()
  let n = 0
  const rows = []
  const pspDeletes = []
  for (const [kind, count] of Object.entries(counts)) {
    for (let i = 0; i < count; i++, n++) {
      const cg = p.sizes.collections - skip - (n % recent)
      // From ten minutes to six hours ago: older than finder_settle_ms, so a finder's window has settled.
      const t = new Date(base - 600_000 - ((n * 7919) % 20_000) * 1000).toISOString()
      const row = { n, c_g: cg, t, session_id: null, provider_data: null, attempts: 2, outcome: null, error_code: null, error_message: null }
      if (kind === "initiate_uncertain") {
        Object.assign(row, { provider_id: "test-pay", operation: "initiate", state: "uncertain", outcome: "timeout", error_code: "payment_provider_timeout", error_message: "no answer within 20000 ms" })
      } else if (kind === "delete_manual") {
        Object.assign(row, { provider_id: "manual", operation: "delete", state: "started", provider_data: { status: "pending" }, error_message: "the provider did not take the delete" })
      } else if (kind === "delete_psp") {
        Object.assign(row, { provider_id: "test-pay", operation: "delete", state: "started", error_message: "fake PSP answered 503" })
        pspDeletes.push(row)
      } else if (kind === "status_answered") {
        Object.assign(row, { provider_id: "test-pay", operation: "status", state: "answered", outcome: "ok", provider_data: { status: "pending" }, attempts: 0 })
      } else {
        Object.assign(row, { provider_id: "test-nofind", operation: "initiate", state: "needs_attention", outcome: "timeout", error_message: "payment provider test-nofind may hold a session of this collection that the database does not name, and it has no finder to ask" })
      }
      rows.push(row)
    }
  }
  if (pspDeletes.length) {
    const ids = await db.query(`SELECT g, id FROM scale_collection WHERE g = ANY($1)`, [pspDeletes.map((r) => r.c_g)])
    const idOf = new Map(ids.rows.map((r) => [r.g, r.id]))
    const intents = await createIntents(p.pspUrl, pspDeletes.map((r) => ({ provider: "test-pay", amount: AMOUNT, collectionId: idOf.get(r.c_g) })))
    pspDeletes.forEach((row, i) => (row.provider_data = intentData(intents[i])))
  }
  for (let i = 0; i < rows.length; i += 5000) {
    await db.query(OPEN_ROW, [p.tag, p.base, AMOUNT, CURRENCY, JSON.stringify(rows.slice(i, i + 5000))])
  }
  return counts
}

async function seedKeys(db, p) {
  const recent = Math.max(1, Math.round((p.sizes.collections * p.ttlSeconds) / p.windowSeconds))
  await db.query(
    `INSERT INTO idempotency_key (id, idempotency_key, created_at, locked_at, request_method, request_params, request_path,
                                  response_code, response_body, recovery_point)
     SELECT 'ikey_' || substr(md5('i' || k.g), 1, 24), 'pcp:' || pg_temp.bench_uuid('key' || k.g), t, NULL, 'POST',
            jsonb_build_object('body_sha256', md5('b' || k.g) || md5('c' || k.g), 'collection_id', c.id),
            '/store/payment-collections/' || c.id || CASE WHEN k.g % 4 = 0 THEN '/sessions/batch/authorize' ELSE '/sessions' END,
            CASE WHEN k.g % 33 = 0 THEN 400 ELSE 200 END,
            CASE WHEN k.g % 33 = 0 THEN '{"type":"invalid_data","message":"Payment provider test-pay is not enabled in this region"}'::jsonb
                 ELSE $4::jsonb END,
            'finished'
       FROM (SELECT g, $1::timestamptz - make_interval(secs => ($2::float8 + 60) * (1 - g::float8 / $3::int)) AS t,
                    $5::int - (g % $6) AS c_g
               FROM generate_series(1, $3::int) g) k
       JOIN scale_collection c ON c.g = k.c_g`,
    [p.base, p.ttlSeconds, p.sizes.keys, JSON.stringify(p.answerBody), p.sizes.collections, Math.min(recent, p.sizes.collections)]
  )
}

/**
 * The status sync's bookkeeping: every pending session of the window asked
 * about before (a few due again now); those at the fake PSP get live intents.
 */
async function seedStatusSync(db, p) {
  const { rows } = await db.query(
    `SELECT s.id, s.provider_id, s.amount, c.id AS collection_id FROM scale_session s JOIN scale_collection c USING (g)
      WHERE s.status IN ('pending', 'requires_more') AND s.provider_id = ANY($3)
        AND s.created_at > $1::timestamptz - make_interval(hours => $2)`,
    [p.base, p.syncWindowHours, PSP_PROVIDERS]
  )
  const intents = await createIntents(p.pspUrl, rows.map((r) => ({ provider: r.provider_id, amount: r.amount, collectionId: r.collection_id })))
  await db.query(
    `UPDATE payment_session ps SET data = u.data FROM jsonb_to_recordset($1::jsonb) AS u(id text, data jsonb) WHERE ps.id = u.id`,
    [JSON.stringify(rows.map((r, i) => ({ id: r.id, data: intentData(intents[i]) })))]
  )
  await db.query(
    `INSERT INTO payment_collection_status_check (payment_session_id, checks, next_check_at)
     SELECT s.id, 1 + s.g % 6, CASE WHEN s.g % 20 = 0 THEN $1::timestamptz - interval '1 minute'
                                    ELSE $1::timestamptz + make_interval(secs => 60 * (1 + s.g % 60)) END
       FROM scale_session s
      WHERE s.status IN ('pending', 'requires_more') AND s.created_at > $1::timestamptz - make_interval(hours => $2)
        AND s.created_at < $1::timestamptz - interval '2 minutes'`,
    [p.base, p.syncWindowHours]
  )
  await db.query(
    `INSERT INTO payment_collection_provider_event (event_id, provider_id, payment_collection_id, created_at)
     SELECT 'evt_' || substr(md5('e' || c.g), 1, 24), c.provider_id, c.id, c.created_at + interval '6 minutes'
       FROM scale_collection c WHERE c.status = 'authorized' AND c.provider_id <> 'manual'`
  )
  return rows.length
}

const SEEDED_TABLES = [
  "payment_collection", "payment_session", "payment_collection_sessions", "payment", "payment_collection_payments",
  "payment_collection_attempt", "idempotency_key", "payment_collection_status_check", "payment_collection_provider_event",
]

/**
 * What autovacuum would have done to tables written long ago (visibility map,
 * hint bits, statistics), so that it does not run behind the measurements;
 * both scale databases get it after their seed.
 */
async function settle(db) {
  for (const table of SEEDED_TABLES) await db.query(`VACUUM (ANALYZE) ${table}`)
  await db.query(`CHECKPOINT`)
}

/**
 * Seeds the full tables. `answerBody`: a real answer of the backend, stored as
 * every key's answer. Answers what it wrote.
 */
async function seedScale(db, { factor, regionId, options, pspUrl, answerBody, log }) {
  const sizes = sizesFor(factor)
  const p = {
    sizes,
    regionId,
    pspUrl,
    answerBody,
    tag: Date.now() % 100000,
    base: new Date().toISOString(),
    windowSeconds: (options.attempt_retention_days + 1) * 86400,
    ttlSeconds: options.idempotency_key_ttl_seconds,
    syncWindowHours: options.status_sync_window_hours,
  }
  const started = Date.now()
  await db.query(`SET synchronous_commit = off`)
  await db.query(`SET maintenance_work_mem = '256MB'`)
  for (const fn of [ID_FUNCTION, UUID_FUNCTION, SESSION_DATA]) await db.query(fn)
  await timed(log, `${sizes.collections} payment collections`, () => seedCollections(db, p))
  await timed(log, "their sessions and payments", () => seedSessionsAndPayments(db, p))
  await seedFinished(db, p, log)
  const open = await timed(log, `${sizes.open} open journal rows`, () => seedOpen(db, p))
  await timed(log, `${sizes.keys} Idempotency-Keys`, () => seedKeys(db, p))
  const pspIntents = await timed(log, "status sync bookkeeping and provider events", () => seedStatusSync(db, p))
  await timed(log, "VACUUM ANALYZE and CHECKPOINT", () => settle(db))
  const counts = (await db.query(
    `SELECT (SELECT count(*) FROM payment_collection)::int AS collections,
            (SELECT count(*) FROM payment_session)::int AS sessions,
            (SELECT count(*) FROM payment)::int AS payments,
            (SELECT count(*) FROM payment_collection_attempt WHERE state IN ('started','answered','uncertain','needs_attention'))::int AS open_attempts,
            (SELECT count(*) FROM payment_collection_attempt WHERE state NOT IN ('started','answered','uncertain','needs_attention'))::int AS closed_attempts,
            (SELECT count(*) FROM payment_collection_attempt WHERE state NOT IN ('started','answered','uncertain','needs_attention')
                AND created_at < now() - make_interval(days => $1))::int AS prune_due,
            (SELECT count(*) FROM idempotency_key WHERE idempotency_key LIKE 'pcp:%')::int AS keys,
            (SELECT count(*) FROM payment_collection_status_check)::int AS status_checks,
            (SELECT count(*) FROM payment_collection_provider_event)::int AS provider_events,
            pg_database_size(current_database())::bigint AS database_bytes`,
    [options.attempt_retention_days]
  )).rows[0]
  await db.query(`DROP TABLE scale_collection, scale_session, scale_payment`)
  return { factor, sizes, open, pspIntents, counts: { ...counts, database_bytes: Number(counts.database_bytes) }, seconds: (Date.now() - started) / 1000 }
}

module.exports = { seedScale, settle, sizesFor, FULL }
