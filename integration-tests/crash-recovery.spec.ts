import { ExtraBackend, startExtraBackend, stopExtraBackends } from "./helpers/backend"
import { Api, HttpResponse, adminApi, createApi } from "./helpers/http"
import { createPaymentCollection, createRegion, db } from "./helpers/factories"
import { psp, PspBehaviours, PspOperation } from "./helpers/fake-psp"
import { fakeStripe, FakeStripeFaults, StripeOperation } from "./helpers/fake-stripe"
import { ProviderSide, fakePspSide, fakeStripeSide } from "./helpers/provider-side"
import { HeldLock, base, holdLock, sleep, waitFor } from "./helpers/payments"

// A backend process is SIGKILLed in the middle of the group's requests — after
// the provider answered and before the commit; after the commit and before the
// HTTP answer; while a provider call is in flight, for every operation
// (initiate, update, authorize, delete, and the status asked before a
// removal), the provider having acted and its answer never arriving — and a
// backend (the restarted one, another one still running, or the shared one)
// settles what it left. Every provider here has a finder, so nothing is left
// to a person: afterwards, for every collection,
//   - no journal row is open (started, answered, uncertain, needs_attention);
//   - the provider's live sessions are exactly the ones the database names
//     (sessions and payments), each with the database's amount;
//   - every authorization the provider holds on a session a backend asked
//     about (authorize, or the status before a removal, even with no answer)
//     is recorded: the session authorized, one payment for it of the
//     provider's amount, the collection's authorized amount. (A session the
//     shopper confirmed and no request asked about is known to the provider
//     only, until it tells.)
// A provider without a finder (test-nofind) killed while its initiate is in
// flight leaves one row `needs_attention`, listed for the admin and announced.
//
// The same in-flight kills run over the real medusa-payment-stripe against the
// fake Stripe API (its built-in finder lists the collection's intents), where
// an update of a guest's session re-creates the intent.
//
// The providers (the fake PSP, the fake Stripe API) are processes of their
// own: killing a backend does not erase what they hold. The kill points are
// reached from outside: a SHARE lock on the session tables stops a request at
// its first write (after its provider calls answered); a row lock on its
// Idempotency-Key row stops it after its commit, before its answer; a provider
// call that acts and then hangs stops it in the middle of that call.
//
// Printed: for each kill point and collection, the ms from the kill until the
// provider and the database agree, and until no journal row is open (a
// restart included; a call's lease, 2 × provider_timeout_ms, must end first).

const OPTIONS = {
  provider_timeout_ms: 1500,
  lock_timeout_ms: 1500,
  reconcile_interval_ms: 1000,
  // A finder's window is concluded a second after the call began (the providers here answer at once).
  finder_settle_ms: 1000,
}
/** Long enough for every request of a kill point to reach its hanging call before any call times out. */
const IN_FLIGHT_OPTIONS = { ...OPTIONS, provider_timeout_ms: 3000 }
/** Options under which a stuck Idempotency-Key is taken over late enough to watch it still refused first. */
const KEY_OPTIONS = { ...OPTIONS, lock_timeout_ms: 5000 }
/** Under KEY_OPTIONS, an Idempotency-Key whose request died is taken over after this long. */
const LONGEST_REQUEST_MS =
  KEY_OPTIONS.lock_timeout_ms + 4 * KEY_OPTIONS.provider_timeout_ms + KEY_OPTIONS.provider_timeout_ms + KEY_OPTIONS.lock_timeout_ms
/** A restart, the longest lease, a few reconcile passes (and backoffs) and the finder's window. */
const RECONCILE_TIMEOUT_MS = 2 * IN_FLIGHT_OPTIONS.provider_timeout_ms + 12 * OPTIONS.reconcile_interval_ms + 30_000
const SESSION_TABLES = "payment_session, payment_collection_sessions, payment, payment_collection_payments"
const OPEN = ["started", "answered", "uncertain", "needs_attention"]
const CLOSED = ["committed", "undone", "adopted", "failed", "resolved"]
const NEEDS_ATTENTION_EVENT = "payment-collection.attempt_needs_attention"

// ------------------------------------------------------------ the provider's side

/** A provider's object of a collection that it still holds (not canceled). */
type LiveObject = { id: string; amount: number; status: string; authorized: boolean }

/** What the provider still holds for a collection (helpers/provider-side.ts: the fake PSP's or the fake Stripe's intents). */
async function liveAt(side: ProviderSide, collectionId: string): Promise<LiveObject[]> {
  return (await side.objects(collectionId))
    .filter((o) => o.status !== "canceled")
    .map((o) => ({ id: o.id, amount: o.amount, status: o.status, authorized: o.status === "authorized" || o.status === "captured" }))
}

// ------------------------------------------------------------ scenarios

type Scenario = {
  name: string
  collectionId: string
  side: ProviderSide
  /** The request to interrupt. */
  fire: (shop: Api, headers: Record<string, string>) => Promise<HttpResponse>
}

/** A scenario whose request is killed while one of its provider calls is in flight. */
type InFlight = Scenario & {
  /** The journal operation of the call in flight at the kill. */
  operation: string
  /** Whether the provider has received that call (and acted, where it acts). */
  reached(): Promise<boolean>
}

type Timing = { agree: number | null; closed: number | null }

/** Kill point → ms from the kill until the restarted backend answered (none: another one settled). */
const restartTimes: Record<string, number> = {}

async function linked(collectionId: string) {
  const [sessions, payments, collection] = await Promise.all([
    db.query(
      `SELECT ps.* FROM payment_session ps JOIN payment_collection_sessions l ON l.payment_session_id = ps.id
        WHERE l.payment_collection_id = $1`,
      [collectionId]
    ),
    db.query(
      `SELECT p.* FROM payment p JOIN payment_collection_payments l ON l.payment_id = p.id
        WHERE l.payment_collection_id = $1`,
      [collectionId]
    ),
    db.query(`SELECT status, amount, authorized_amount FROM payment_collection WHERE id = $1`, [collectionId]),
  ])
  return { sessions: sessions.rows as any[], payments: payments.rows as any[], collection: collection.rows[0] }
}

async function journalRows(collectionIds: string[]) {
  const { rows } = await db.query(
    `SELECT id, payment_collection_id, provider_id, operation, state, outcome, payment_session_id, error_message
       FROM payment_collection_attempt WHERE payment_collection_id = ANY($1) ORDER BY created_at, id`,
    [collectionIds]
  )
  return rows
}

/**
 * What differs between the provider and the database for one collection (empty: they agree):
 * live objects the database does not name, named sessions the provider does not hold (or at
 * another amount), authorizations the provider holds that the database does not record although
 * a backend asked the provider about them.
 */
async function disagreements(scenario: Scenario): Promise<string[]> {
  const [{ sessions, payments, collection }, live] = await Promise.all([linked(scenario.collectionId), liveAt(scenario.side, scenario.collectionId)])
  const problems: string[] = []
  const named = new Set([...sessions, ...payments].map((row) => row.data?.id).filter(Boolean))
  const liveById = new Map(live.map((o) => [o.id, o]))
  for (const o of live.filter((o) => !named.has(o.id))) problems.push(`live ${o.status} ${o.id} (${o.amount}) named by no session or payment`)
  for (const s of sessions.filter((s) => s.provider_id !== "manual")) {
    const o = liveById.get(s.data?.id)
    if (!o) problems.push(`session ${s.id} names ${s.data?.id}, not live at the provider`)
    else if (o.amount !== s.amount) problems.push(`session ${s.id} holds ${s.amount}, the provider ${o.amount}`)
  }
  // The authorizations a backend asked about (authorize, or the status before a removal): the
  // shopper may confirm a session nothing ever asks about, which only the provider knows.
  const asked = new Set(
    (await journalRows([scenario.collectionId])).filter((r) => r.operation === "authorize" || r.operation === "status").map((r) => r.payment_session_id)
  )
  for (const o of live.filter((o) => o.authorized)) {
    const session = sessions.find((s) => s.data?.id === o.id)
    if (session && !asked.has(session.id)) continue
    const paid = payments.filter((p) => p.data?.id === o.id)
    if (session?.status !== "authorized" || paid.length !== 1 || paid[0].amount !== o.amount) {
      problems.push(
        `the provider holds an authorization of ${o.amount} on ${o.id}; the database: session ${session?.status ?? "none"}, payments ${JSON.stringify(paid.map((p) => p.amount))}`
      )
    }
  }
  const authorizedAmount = sessions.filter((s) => s.status === "authorized").reduce((sum, s) => sum + s.amount, 0)
  if ((collection.authorized_amount ?? 0) !== authorizedAmount) {
    problems.push(`authorized_amount ${collection.authorized_amount}, authorized sessions add up to ${authorizedAmount}`)
  }
  return problems
}

describe("crash recovery: a backend killed mid-request, then settled", () => {
  let region: any
  let stripeRegion: any
  /** Kill point → collection → ms from the kill. */
  const timings: Record<string, Record<string, Timing>> = {}

  beforeAll(async () => {
    region = await createRegion({ providers: ["manual", "test-pay", "test-legacy", "test-fields", "test-nofind"] })
    stripeRegion = await createRegion({ providers: ["manual", "stripe"] })
  })

  beforeEach(async () => {
    await psp.reset()
    await fakeStripe.reset()
  })

  // A test that failed half-way leaves no backend behind to settle the next test's rows.
  afterEach(() => stopExtraBackends(), 60_000)

  afterAll(async () => {
    await psp.reset()
    await stopExtraBackends()
    await db.end()
    const lines = Object.entries(timings).map(
      ([point, byCollection]) =>
        `  ${point}${restartTimes[point] ? ` (restarted backend up after ${restartTimes[point]})` : ""}: ${Object.entries(byCollection)
          .map(([name, t]) => `${name} ${t.agree ?? "-"}/${t.closed ?? "-"}`)
          .join(", ")}`
    )
    console.log(`crash recovery: ms from the kill until provider and database agree / no journal row is open (restart included)\n${lines.join("\n")}`)
  }, 60_000)

  const start = (options: object = OPTIONS) =>
    startExtraBackend({ env: { PAYMENT_COLLECTIONS_OPTIONS: JSON.stringify(options) } })

  /** Starts the killed backend again; notes when it was up, for the kill point's timings. */
  async function restart(point: string, options: object = OPTIONS): Promise<ExtraBackend> {
    const backend = await start(options)
    restartTimes[point] = Date.now() - killedAt
    return backend
  }

  async function collectionWithSessions(
    shop: Api,
    amount: number,
    sessions: { provider_id: string; amount: number }[],
    regionId: string = region.id
  ) {
    const collection = await createPaymentCollection({ regionId, amount })
    if (sessions.length) {
      const res = await shop.post(`${base(collection.id)}/sessions/batch`, { sessions })
      expect(res.status).toBe(200)
      return { id: collection.id, sessions: res.body.payment_collection.payment_sessions as any[] }
    }
    return { id: collection.id, sessions: [] as any[] }
  }

  const post = (path: string, body?: unknown) => (s: Api, headers: Record<string, string>) => s.post(path, body, { headers })

  /** One collection per operation of the group, each with the request that will be interrupted. */
  async function scenarios(shop: Api): Promise<Scenario[]> {
    const create = await collectionWithSessions(shop, 1000, [])
    const switchProvider = await collectionWithSessions(shop, 1000, [{ provider_id: "test-pay", amount: 1000 }])
    const batchCreate = await collectionWithSessions(shop, 1000, [])
    const batchUpdate = await collectionWithSessions(shop, 1000, [{ provider_id: "test-pay", amount: 1000 }])
    const batchRemove = await collectionWithSessions(shop, 1000, [
      { provider_id: "test-pay", amount: 500 },
      { provider_id: "test-legacy", amount: 500 },
    ])
    const refresh = await collectionWithSessions(shop, 1000, [{ provider_id: "test-fields", amount: 1000 }])
    const authorize = await collectionWithSessions(shop, 1000, [
      { provider_id: "test-pay", amount: 600 },
      { provider_id: "test-legacy", amount: 400 },
    ])
    for (const session of authorize.sessions) await psp.confirmSession(session)
    const side = fakePspSide
    return [
      { name: "create", side, collectionId: create.id, fire: post(`${base(create.id)}/sessions`, { provider_id: "test-pay" }) },
      {
        name: "create (switching provider)",
        side,
        collectionId: switchProvider.id,
        fire: post(`${base(switchProvider.id)}/sessions`, { provider_id: "test-legacy" }),
      },
      {
        name: "batch (create)",
        side,
        collectionId: batchCreate.id,
        fire: post(`${base(batchCreate.id)}/sessions/batch`, {
          sessions: [
            { provider_id: "test-pay", amount: 500 },
            { provider_id: "test-fields", amount: 500 },
          ],
        }),
      },
      {
        name: "batch (update)",
        side,
        collectionId: batchUpdate.id,
        fire: post(`${base(batchUpdate.id)}/sessions/batch`, {
          sessions: [
            { provider_id: "test-pay", amount: 700, session_id: batchUpdate.sessions[0].id },
            { provider_id: "test-legacy", amount: 300 },
          ],
        }),
      },
      {
        name: "batch (remove)",
        side,
        collectionId: batchRemove.id,
        fire: post(`${base(batchRemove.id)}/sessions/batch`, { sessions: [{ provider_id: "test-fields", amount: 1000 }] }),
      },
      { name: "refresh", side, collectionId: refresh.id, fire: post(`${base(refresh.id)}/sessions/${refresh.sessions[0].id}`) },
      {
        name: "authorize",
        side,
        collectionId: authorize.id,
        fire: post(`${base(authorize.id)}/sessions/batch/authorize`, { session_ids: authorize.sessions.map((s) => s.id) }),
      },
    ]
  }

  /** The fake PSP acts, then never answers: the call is in flight until the process dies. */
  const hangAfterEffect = (resourceId: string, extra: { provider?: string } = {}) => ({
    fail: "hang" as const,
    afterEffect: true,
    times: 1,
    resourceId,
    ...extra,
  })

  const pspReached = (method: PspOperation, resourceId: string) => async () =>
    (await psp.history({ method, resourceId })).some((call) => call.outcome === "hung")

  /**
   * The scenarios of the fake PSP, each with the call that will be in flight at
   * the kill: every operation of the group, each acting at the provider first.
   */
  async function inFlightScenarios(shop: Api): Promise<InFlight[]> {
    const list = await scenarios(shop)
    const byName = (name: string) => list.find((s) => s.name === name)!
    const cases: { name: string; method: PspOperation; operation: string; rule: (id: string) => object }[] = [
      { name: "create", method: "initiatePayment", operation: "initiate", rule: (id) => hangAfterEffect(id) },
      // The provider is asked before its session is replaced; the kill comes before it tells.
      { name: "create (switching provider)", method: "getPaymentStatus", operation: "status", rule: (id) => hangAfterEffect(id) },
      // The first session was initiated; the second one's initiate is in flight.
      { name: "batch (create)", method: "initiatePayment", operation: "initiate", rule: (id) => hangAfterEffect(id, { provider: "test-fields" }) },
      // The new amount is set at the provider; its answer never comes.
      { name: "batch (update)", method: "updatePayment", operation: "update", rule: (id) => hangAfterEffect(id) },
      // Committed; the first removed session's intent is canceled, the answer never comes.
      { name: "batch (remove)", method: "deletePayment", operation: "delete", rule: (id) => hangAfterEffect(id) },
      // The new session's intent exists at the provider; its id never reaches the backend.
      { name: "refresh", method: "initiatePayment", operation: "initiate", rule: (id) => hangAfterEffect(id) },
      // The shopper confirmed both; the first authorize's answer never comes.
      { name: "authorize", method: "authorizePayment", operation: "authorize", rule: (id) => hangAfterEffect(id) },
    ]
    const rules: PspBehaviours = {}
    const result: InFlight[] = []
    for (const c of cases) {
      const scenario = byName(c.name)
      const rule = c.rule(scenario.collectionId) as any
      rules[c.method] = [...((rules[c.method] as any[]) ?? []), rule]
      result.push({ ...scenario, operation: c.operation, reached: pspReached(c.method, scenario.collectionId) })
    }
    await psp.behaviour(rules)
    return result
  }

  const stripeReached = (operation: StripeOperation, resourceId: string) => async () =>
    (await fakeStripe.history({ operation, resourceId })).some((call) => call.outcome === "fault:hang")

  /**
   * The same kills over the real medusa-payment-stripe. For a guest its update
   * creates a new customer and intent (it never updates one), so the update in
   * flight is a payment_intents.create too.
   */
  async function stripeInFlightScenarios(shop: Api): Promise<InFlight[]> {
    const on = (amount: number, sessions: { provider_id: string; amount: number }[]) =>
      collectionWithSessions(shop, amount, sessions, stripeRegion.id)
    const create = await on(1000, [])
    const batchUpdate = await on(1000, [{ provider_id: "stripe", amount: 1000 }])
    const batchRemove = await on(1000, [
      { provider_id: "stripe", amount: 500 },
      { provider_id: "stripe", amount: 500 },
    ])
    const refresh = await on(1000, [{ provider_id: "stripe", amount: 1000 }])
    const authorize = await on(1000, [{ provider_id: "stripe", amount: 1000 }])
    await fakeStripe.confirmSession(authorize.sessions[0])
    const side = fakeStripeSide
    const hang = (resourceId: string) => ({ fail: "hang" as const, afterEffect: true, times: 1, resourceId })
    const faults: FakeStripeFaults = {
      "payment_intents.create": [hang(create.id), hang(batchUpdate.id), hang(refresh.id)],
      "payment_intents.cancel": [hang(batchRemove.id)],
      // Authorize reads the intent (getPaymentStatus): that read is in flight.
      "payment_intents.retrieve": [hang(authorize.id)],
    }
    await fakeStripe.faults(faults)
    return [
      {
        name: "stripe create",
        side,
        collectionId: create.id,
        fire: post(`${base(create.id)}/sessions`, { provider_id: "stripe" }),
        operation: "initiate",
        reached: stripeReached("payment_intents.create", create.id),
      },
      {
        name: "stripe batch (update)",
        side,
        collectionId: batchUpdate.id,
        fire: post(`${base(batchUpdate.id)}/sessions/batch`, {
          sessions: [
            { provider_id: "stripe", amount: 700, session_id: batchUpdate.sessions[0].id },
            { provider_id: "manual", amount: 300 },
          ],
        }),
        operation: "update",
        reached: stripeReached("payment_intents.create", batchUpdate.id),
      },
      {
        name: "stripe batch (remove)",
        side,
        collectionId: batchRemove.id,
        fire: post(`${base(batchRemove.id)}/sessions/batch`, { sessions: [{ provider_id: "manual", amount: 1000 }] }),
        operation: "delete",
        reached: stripeReached("payment_intents.cancel", batchRemove.id),
      },
      {
        name: "stripe refresh",
        side,
        collectionId: refresh.id,
        fire: post(`${base(refresh.id)}/sessions/${refresh.sessions[0].id}`),
        operation: "initiate",
        reached: stripeReached("payment_intents.create", refresh.id),
      },
      {
        name: "stripe authorize",
        side,
        collectionId: authorize.id,
        fire: post(`${base(authorize.id)}/sessions/${authorize.sessions[0].id}/authorize`),
        operation: "authorize",
        reached: stripeReached("payment_intents.retrieve", authorize.id),
      },
    ]
  }

  /** Fires every scenario's request without waiting for it (the process will die under it). */
  function fireAll(shop: Api, list: Scenario[], headersOf: (s: Scenario) => Record<string, string> = () => ({})) {
    for (const scenario of list) {
      scenario.fire(shop, headersOf(scenario)).catch(() => undefined)
    }
  }

  let killedAt = 0
  function kill(backend: ExtraBackend) {
    process.kill(backend.pid, "SIGKILL")
    killedAt = Date.now()
  }

  /**
   * Kills `backend` once every scenario's call is in flight at its provider,
   * and checks that it was: each of those calls' journal rows is still
   * `started`, unanswered, not timed out.
   */
  async function killInFlight(backend: ExtraBackend, list: InFlight[]) {
    await waitFor(
      "every request's provider call to be in flight",
      async () => (await Promise.all(list.map((s) => s.reached()))).every(Boolean),
      { timeoutMs: 20_000, intervalMs: 25 }
    )
    kill(backend)
    const rows = await journalRows(list.map((s) => s.collectionId))
    for (const scenario of list) {
      const inFlight = rows.filter(
        (r) => r.payment_collection_id === scenario.collectionId && r.operation === scenario.operation && r.state === "started" && r.outcome === null
      )
      // (A removal's deletes are all staged `started`; the first is in flight.)
      expect({ scenario: scenario.name, inFlight: inFlight.length > 0 }).toEqual({ scenario: scenario.name, inFlight: true })
    }
  }

  /**
   * Waits until, for every scenario, no journal row is open (but those
   * `attention` names, which must be `needs_attention`) and the provider and
   * the database agree; records when each happened (ms after the kill) under
   * `point`; then checks it all once more and answers the journal rows.
   */
  async function expectSettled(point: string, list: Scenario[], { attention = new Set<string>() } = {}) {
    const seen: Record<string, Timing> = Object.fromEntries(list.map((s) => [s.name, { agree: null, closed: null }]))
    timings[point] = seen
    const ids = list.map((s) => s.collectionId)
    const closedFor = (rows: any[], s: Scenario) =>
      rows.filter((r) => r.payment_collection_id === s.collectionId).every((r) => CLOSED.includes(r.state) || (attention.has(s.name) && r.state === "needs_attention"))
    try {
      await waitFor(
        "every collection's journal to close and its provider to agree with its database",
        async () => {
          const rows = await journalRows(ids)
          await Promise.all(
            list.map(async (s) => {
              const t = seen[s.name]
              if (t.closed === null && closedFor(rows, s)) t.closed = Date.now() - killedAt
              if (t.agree === null && !attention.has(s.name) && !(await disagreements(s)).length) t.agree = Date.now() - killedAt
            })
          )
          return list.every((s) => seen[s.name].closed !== null && (attention.has(s.name) || seen[s.name].agree !== null))
        },
        { timeoutMs: RECONCILE_TIMEOUT_MS, intervalMs: 100 }
      )
    } catch (err) {
      const rows = await journalRows(ids)
      const report = await Promise.all(
        list.map(async (s) => ({
          scenario: s.name,
          journal: rows
            .filter((r) => r.payment_collection_id === s.collectionId)
            .map((r) => `${r.operation} ${r.provider_id} ${r.payment_session_id ?? "-"} ${r.state} ${r.outcome ?? "-"}${r.error_message ? ` (${r.error_message})` : ""}`),
          disagreements: attention.has(s.name) ? [] : await disagreements(s),
        }))
      )
      throw new Error(`${(err as Error).message}\n${JSON.stringify(report, null, 1)}`)
    }

    const rows = await journalRows(ids)
    for (const scenario of list) {
      const own = rows.filter((r) => r.payment_collection_id === scenario.collectionId)
      // No state outside the journal's: `unknown` is gone; nothing is open.
      expect({ scenario: scenario.name, unexpected: own.filter((r) => ![...OPEN, ...CLOSED].includes(r.state)) }).toEqual({
        scenario: scenario.name,
        unexpected: [],
      })
      if (attention.has(scenario.name)) continue
      expect({ scenario: scenario.name, open: own.filter((r) => OPEN.includes(r.state)) }).toEqual({ scenario: scenario.name, open: [] })
      expect({ scenario: scenario.name, disagreements: await disagreements(scenario) }).toEqual({ scenario: scenario.name, disagreements: [] })
    }
    return rows
  }

  /**
   * Every request has had its provider calls answered and waits, in its
   * write, for the session tables the test holds locked. (An ok answer of a
   * provider with a finder is not journaled on its own — it commits with the
   * rows — so the journal cannot tell this; PostgreSQL can.)
   */
  async function waitForBlockedWrites(list: Scenario[]) {
    await waitFor(
      "every request to wait in its write for the held lock",
      async () => {
        const { rows } = await db.query(
          `SELECT count(*)::int AS n FROM pg_stat_activity
            WHERE datname = current_database() AND wait_event_type = 'Lock' AND query ~ 'pcp_write_'`
        )
        return rows[0].n >= list.length
      },
      { timeoutMs: 20_000, intervalMs: 50 }
    )
  }

  it(
    "killed after the providers answered and before the commit: the restarted backend undoes, sets back and adopts",
    async () => {
      const backend = await start()
      const shop = createApi(backend.url)
      const list = await scenarios(shop)
      let lock: HeldLock | undefined = await holdLock(`LOCK TABLE ${SESSION_TABLES} IN SHARE MODE`)
      try {
        fireAll(shop, list)
        await waitForBlockedWrites(list)
        kill(backend)
      } finally {
        await lock.release()
        lock = undefined
      }

      const restarted = await restart("after answer, before commit")
      await expectSettled("after answer, before commit", list)
      await restarted.stop()
    },
    180_000
  )

  it(
    "killed after the commit and before the answer: nothing to undo, and a retry with the request's Idempotency-Key gets its answer",
    async () => {
      const [backend, survivor] = await Promise.all([start(KEY_OPTIONS), start(KEY_OPTIONS)])
      const shop = createApi(backend.url)
      const list = await scenarios(shop)
      const keyOf = (s: Scenario) => `crash-after-commit-${s.collectionId}`
      // A request's answer is stored with its key in the transaction that commits its rows.
      // After that commit, the deletes of the sessions it removed run before the answer:
      // hanging, they hold those requests there until the kill; the others die as soon as
      // their commit is seen (their answer may have left by then: a retry is replayed alike).
      await psp.behaviour({ deletePayment: { delayMs: 60_000 } })
      fireAll(shop, list, (s) => ({ "idempotency-key": keyOf(s) }))
      const keys = list.map((s) => `pcp:${keyOf(s)}`)
      try {
        await waitFor(
          "every request to have committed its rows and its answer",
          async () => {
            const { rows } = await db.query(
              `SELECT count(*)::int AS n FROM idempotency_key WHERE idempotency_key = ANY($1) AND response_code IS NOT NULL`,
              [keys]
            )
            return rows[0].n === keys.length
          },
          { timeoutMs: 30_000, intervalMs: 20 }
        )
        // The removals go on to delete at the provider right after their commit (their answers
        // wait for that, up to provider_timeout_ms): killed with those deletes in flight.
        const removals = list.filter((s) => s.name === "batch (remove)" || s.name === "refresh" || s.name === "create (switching provider)")
        await waitFor(
          "the removals' deletes to be in flight at the provider",
          async () => {
            const deletes = await psp.history({ method: "deletePayment" })
            return deletes.filter((call) => call.outcome === "in_flight").length >= removals.length
          },
          { timeoutMs: 10_000, intervalMs: 20 }
        )
        kill(backend)
      } finally {
        await psp.behaviour({ deletePayment: null })
      }

      // The dead request's answer was stored with its rows, before it could be sent: a
      // client that retries with its key gets it.
      const retryShop = createApi(survivor.url)
      await expectSettled("after commit, before answer", list)
      for (const scenario of list) {
        const replay = await scenario.fire(retryShop, { "idempotency-key": keyOf(scenario) })
        expect({
          scenario: scenario.name,
          status: replay.status,
          replayed: replay.headers["idempotent-replayed"],
          ...(replay.status === 200 ? {} : { body: replay.body }),
        }).toEqual({ scenario: scenario.name, status: 200, replayed: "true" })
      }
      await survivor.stop()
    },
    180_000
  )

  it(
    "killed while a call of every operation is in flight, the provider having acted: settled through the finder, nothing left open",
    async () => {
      const backend = await start(IN_FLIGHT_OPTIONS)
      const shop = createApi(backend.url)
      const list = await inFlightScenarios(shop)
      fireAll(shop, list)
      await killInFlight(backend, list)
      await psp.behaviour({ initiatePayment: null, updatePayment: null, authorizePayment: null, deletePayment: null, getPaymentStatus: null })

      const restarted = await restart("call in flight", IN_FLIGHT_OPTIONS)
      const rows = await expectSettled("call in flight", list)
      const of = (name: string) => rows.filter((r) => r.payment_collection_id === list.find((s) => s.name === name)!.collectionId)
      // The intents created by calls whose answers never came were found and deleted
      // (committed initiates are the sessions the collections started with).
      for (const name of ["create", "batch (create)", "refresh"]) {
        const initiates = of(name).filter((r) => r.operation === "initiate" && r.state !== "committed")
        expect({ scenario: name, initiates: initiates.map((r) => r.state) }).toEqual({
          scenario: name,
          initiates: name === "batch (create)" ? ["undone", "undone"] : ["undone"],
        })
        expect({ scenario: name, finds: of(name).some((r) => r.operation === "find") }).toEqual({ scenario: name, finds: true })
      }
      // The update was set back to the database's amount, and what it may have made swept.
      expect(of("batch (update)").filter((r) => r.operation === "update").map((r) => r.state)).toContain("undone")
      // The shopper's authorization is recorded, not voided.
      expect(of("authorize").filter((r) => r.operation === "authorize").map((r) => r.state)).toContain("adopted")
      // The removal is finished: every removed session's intent is canceled.
      expect(of("batch (remove)").filter((r) => r.operation === "delete").map((r) => r.state)).toEqual(["committed", "committed"])
      await restarted.stop()
    },
    180_000
  )

  it(
    "a provider without a finder (test-nofind), killed while its initiate is in flight: the row needs attention, listed and announced once",
    async () => {
      const backend = await start(IN_FLIGHT_OPTIONS)
      const shop = createApi(backend.url)
      const collection = await createPaymentCollection({ regionId: region.id, amount: 1000 })
      const scenario: InFlight = {
        name: "create (test-nofind)",
        side: fakePspSide,
        collectionId: collection.id,
        fire: post(`${base(collection.id)}/sessions`, { provider_id: "test-nofind" }),
        operation: "initiate",
        reached: pspReached("initiatePayment", collection.id),
      }
      await psp.behaviour({ initiatePayment: hangAfterEffect(collection.id) })
      fireAll(shop, [scenario])
      await killInFlight(backend, [scenario])
      await psp.behaviour({ initiatePayment: null })

      const restarted = await restart("initiate in flight, no finder", IN_FLIGHT_OPTIONS)
      const rows = await expectSettled("initiate in flight, no finder", [scenario], { attention: new Set([scenario.name]) })
      expect(rows.map((r) => ({ operation: r.operation, state: r.state, provider_id: r.provider_id }))).toEqual([
        { operation: "initiate", state: "needs_attention", provider_id: "test-nofind" },
      ])
      // What the row says: the provider may hold a session the database does not name. It does.
      expect(await disagreements(scenario)).toEqual([expect.stringMatching(/^live pending pi_\S+ \(1000\) named by no session or payment$/)])
      const listed = await adminApi.get(`/admin/payment-collections/attempts?state=needs_attention&limit=100`)
      expect(listed.status).toBe(200)
      expect(listed.body.attempts).toContainEqual(
        expect.objectContaining({ id: rows[0].id, payment_collection_id: collection.id, operation: "initiate", state: "needs_attention" })
      )
      // Announced once, by whichever backend settled it (the restarted one, or the shared one).
      const announced = async () => {
        const lists = await Promise.all(
          [createApi(restarted.url), adminApi].map(async (a) => {
            const res = await a.get(`/event-recorder/events?event=${encodeURIComponent(NEEDS_ATTENTION_EVENT)}`)
            return ((res.body.events ?? []) as any[]).filter((e) => e.data?.id === rows[0].id)
          })
        )
        return lists.flat()
      }
      await waitFor("the needs-attention event", async () => (await announced()).length > 0, { timeoutMs: 20_000, intervalMs: 250 })
      // Retried meanwhile (a finder might appear), but announced no more.
      await sleep(3 * OPTIONS.reconcile_interval_ms)
      const events = await announced()
      expect(events.map((e) => e.data)).toEqual([
        expect.objectContaining({ id: rows[0].id, payment_collection_id: collection.id, provider_id: "test-nofind", operation: "initiate" }),
      ])
      await restarted.stop()
    },
    120_000
  )

  it(
    "the real medusa-payment-stripe, killed while each operation's call is in flight: its built-in finder settles them, nothing left open",
    async () => {
      const backend = await start(IN_FLIGHT_OPTIONS)
      const shop = createApi(backend.url)
      const list = await stripeInFlightScenarios(shop)
      fireAll(shop, list)
      await killInFlight(backend, list)
      await fakeStripe.faults({ "payment_intents.create": null, "payment_intents.cancel": null, "payment_intents.retrieve": null })

      const restarted = await restart("stripe, call in flight", IN_FLIGHT_OPTIONS)
      const rows = await expectSettled("stripe, call in flight", list)
      const of = (name: string) => rows.filter((r) => r.payment_collection_id === list.find((s) => s.name === name)!.collectionId)
      expect(of("stripe authorize").filter((r) => r.operation === "authorize").map((r) => r.state)).toContain("adopted")
      expect(of("stripe batch (remove)").filter((r) => r.operation === "delete").map((r) => r.state)).toEqual(["committed", "committed"])
      // The update's lost intent (a guest's update re-creates it) was found and canceled.
      const updated = list.find((s) => s.name === "stripe batch (update)")!
      const intents = await fakeStripe.paymentIntents({ resourceId: updated.collectionId })
      expect(intents.filter((i) => i.status !== "canceled")).toHaveLength(1)
      expect(intents.length).toBeGreaterThanOrEqual(2)
      await restarted.stop()
    },
    180_000
  )

  it(
    "two backends on one database: one is killed mid-request, the other one settles while serving; a stuck Idempotency-Key is taken over only after the longest request",
    async () => {
      const [victim, survivor] = await Promise.all([start(KEY_OPTIONS), start(KEY_OPTIONS)])
      const shop = createApi(victim.url)
      const list = await scenarios(shop)
      const keyOf = (s: Scenario) => `crash-two-backends-${s.collectionId}`
      const lock = await holdLock(`LOCK TABLE ${SESSION_TABLES} IN SHARE MODE`)
      try {
        fireAll(shop, list, (s) => ({ "idempotency-key": keyOf(s) }))
        await waitForBlockedWrites(list)
        kill(victim)
      } finally {
        await lock.release()
      }

      // The keys' owner died mid-request, before any answer: a retry is "still running"
      // until no request could be, then runs again.
      const retryShop = createApi(survivor.url)
      const [create] = list
      const { rows } = await db.query(`SELECT locked_at FROM idempotency_key WHERE idempotency_key = $1`, [`pcp:${keyOf(create)}`])
      const takeoverAt = new Date(rows[0].locked_at).getTime() + LONGEST_REQUEST_MS
      expect(Date.now()).toBeLessThan(takeoverAt - 1000)
      const early = await create.fire(retryShop, { "idempotency-key": keyOf(create) })
      expect({ status: early.status, type: early.body.type }).toEqual({ status: 409, type: "conflict" })

      await expectSettled("other backend settles", list)
      await sleep(Math.max(0, takeoverAt + 1500 - Date.now()))
      const late = await create.fire(retryShop, { "idempotency-key": keyOf(create) })
      expect(late.status).toBe(200)
      expect(late.body.payment_collection.payment_sessions).toHaveLength(1)

      // The survivor served throughout and still does.
      const collection = await createPaymentCollection({ regionId: region.id, amount: 100 })
      expect((await retryShop.post(`${base(collection.id)}/sessions`, { provider_id: "test-pay" })).status).toBe(200)
    },
    180_000
  )
})
