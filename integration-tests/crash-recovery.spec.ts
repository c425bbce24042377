import { ExtraBackend, startExtraBackend, stopExtraBackends } from "./helpers/backend"
import { Api, HttpResponse, adminApi, createApi } from "./helpers/http"
import { createPaymentCollection, createRegion, db } from "./helpers/factories"
import { psp } from "./helpers/fake-psp"
import { HeldLock, base, holdLock, sleep, waitFor } from "./helpers/payments"

// A backend process is SIGKILLed in the middle of the group's requests — after
// the provider answered and before the commit; after the commit and before the
// HTTP answer; in the middle of a removal; while a provider call is in flight —
// and a backend (the restarted one, or another one still running) reconciles.
// Afterwards, for every collection:
//   - the provider's live sessions are exactly the ones the database names;
//   - every authorization the provider reported is recorded in the database;
//   - no journal row is left unfinished, except `unknown` ones, which are
//     exactly the initiate calls the killed process had in flight.
//
// The "provider" is the fake PSP, a process of its own: killing a backend does
// not erase what it holds. The kill points are reached from outside: a SHARE
// lock on the session tables stops a request at its first write (after its
// provider calls answered); a row lock on its Idempotency-Key row stops it
// after its commit, before its answer; a PSP call that hangs stops it in the
// middle of a removal or of a provider call.

const OPTIONS = {
  provider_timeout_ms: 1500,
  lock_timeout_ms: 1500,
  reconcile_interval_ms: 1000,
}
/** A started call may be finished by the reconciler this long after it started. */
const LEASE_MS = 2 * OPTIONS.provider_timeout_ms
/** Options under which a stuck Idempotency-Key is taken over late enough to watch it still refused first. */
const KEY_OPTIONS = { ...OPTIONS, lock_timeout_ms: 5000 }
/** Under KEY_OPTIONS, an Idempotency-Key whose request died is taken over after this long. */
const LONGEST_REQUEST_MS =
  KEY_OPTIONS.lock_timeout_ms + 4 * KEY_OPTIONS.provider_timeout_ms + KEY_OPTIONS.provider_timeout_ms + KEY_OPTIONS.lock_timeout_ms
const RECONCILE_TIMEOUT_MS = LEASE_MS + 6 * OPTIONS.reconcile_interval_ms + 10_000
const SESSION_TABLES = "payment_session, payment_collection_sessions, payment, payment_collection_payments"

type Scenario = {
  name: string
  collectionId: string
  /** The request to interrupt. */
  fire: (shop: Api, headers: Record<string, string>) => Promise<HttpResponse>
  /** Provider calls the request has answered when it reaches its first write. */
  answeredBeforeWrite: number
}

describe("crash recovery: a backend killed mid-request, then reconciled", () => {
  let region: any
  const timings: Record<string, number> = {}

  beforeAll(async () => {
    region = await createRegion({ providers: ["manual", "test-pay", "test-legacy", "test-fields"] })
  })

  beforeEach(() => psp.reset())

  afterAll(async () => {
    await psp.reset()
    await stopExtraBackends()
    await db.end()
    console.log(`crash recovery: ms from the kill until no journal row is open (restart included): ${JSON.stringify(timings)}`)
  }, 60_000)

  const start = (options = OPTIONS) => startExtraBackend({ env: { PAYMENT_COLLECTIONS_OPTIONS: JSON.stringify(options) } })

  async function collectionWithSessions(shop: Api, amount: number, sessions: { provider_id: string; amount: number }[]) {
    const collection = await createPaymentCollection({ regionId: region.id, amount })
    if (sessions.length) {
      const res = await shop.post(`${base(collection.id)}/sessions/batch`, { sessions })
      expect(res.status).toBe(200)
      return { id: collection.id, sessions: res.body.payment_collection.payment_sessions as any[] }
    }
    return { id: collection.id, sessions: [] as any[] }
  }

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
    const post = (path: string, body?: unknown) => (s: Api, headers: Record<string, string>) => s.post(path, body, { headers })
    return [
      { name: "create", collectionId: create.id, answeredBeforeWrite: 1, fire: post(`${base(create.id)}/sessions`, { provider_id: "test-pay" }) },
      {
        name: "create (switching provider)",
        collectionId: switchProvider.id,
        answeredBeforeWrite: 1,
        fire: post(`${base(switchProvider.id)}/sessions`, { provider_id: "test-legacy" }),
      },
      {
        name: "batch (create)",
        collectionId: batchCreate.id,
        answeredBeforeWrite: 2,
        fire: post(`${base(batchCreate.id)}/sessions/batch`, {
          sessions: [
            { provider_id: "test-pay", amount: 500 },
            { provider_id: "test-fields", amount: 500 },
          ],
        }),
      },
      {
        name: "batch (update)",
        collectionId: batchUpdate.id,
        answeredBeforeWrite: 2,
        fire: post(`${base(batchUpdate.id)}/sessions/batch`, {
          sessions: [
            { provider_id: "test-pay", amount: 700, session_id: batchUpdate.sessions[0].id },
            { provider_id: "test-legacy", amount: 300 },
          ],
        }),
      },
      {
        name: "batch (remove)",
        collectionId: batchRemove.id,
        answeredBeforeWrite: 1,
        fire: post(`${base(batchRemove.id)}/sessions/batch`, { sessions: [{ provider_id: "test-fields", amount: 1000 }] }),
      },
      { name: "refresh", collectionId: refresh.id, answeredBeforeWrite: 1, fire: post(`${base(refresh.id)}/sessions/${refresh.sessions[0].id}`) },
      {
        name: "authorize",
        collectionId: authorize.id,
        answeredBeforeWrite: 2,
        fire: post(`${base(authorize.id)}/sessions/batch/authorize`, { session_ids: authorize.sessions.map((s) => s.id) }),
      },
    ]
  }

  async function journalRows(collectionIds: string[]) {
    const { rows } = await db.query(
      `SELECT id, payment_collection_id, provider_id, operation, state, outcome, payment_session_id
         FROM payment_collection_attempt WHERE payment_collection_id = ANY($1) ORDER BY created_at, id`,
      [collectionIds]
    )
    return rows
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
   * Waits until the journal of these collections has no open row, then checks
   * the provider and the database agree. `unknown` rows are allowed only where
   * `unknownExpected` says so. Returns how long after the kill the journal had
   * no open row (a restart included).
   */
  async function expectReconciled(list: Scenario[], { unknownExpected = new Set<string>() } = {}) {
    const ids = list.map((s) => s.collectionId)
    await waitFor(
      "the journal to have no open row",
      async () => (await journalRows(ids)).every((row) => !["started", "answered"].includes(row.state)),
      { timeoutMs: RECONCILE_TIMEOUT_MS, intervalMs: 200 }
    )
    const took = Date.now() - killedAt

    for (const scenario of list) {
      const { rows: sessions } = await db.query(
        `SELECT ps.* FROM payment_session ps JOIN payment_collection_sessions l ON l.payment_session_id = ps.id
          WHERE l.payment_collection_id = $1`,
        [scenario.collectionId]
      )
      const { rows: payments } = await db.query(
        `SELECT p.* FROM payment p JOIN payment_collection_payments l ON l.payment_id = p.id
          WHERE l.payment_collection_id = $1`,
        [scenario.collectionId]
      )
      const named = new Set([...sessions, ...payments].map((row) => row.data?.id).filter(Boolean))
      const live = (await psp.liveIntents(scenario.collectionId)).map((intent) => intent.id)
      const unnamed = live.filter((id) => !named.has(id))
      const rows = await journalRows([scenario.collectionId])
      const unknown = rows.filter((row) => row.state === "unknown")

      if (unknownExpected.has(scenario.name)) {
        // The one window left: the process died while the provider was creating a
        // session whose id it never sent back. The journal says so.
        expect({ scenario: scenario.name, unknown: unknown.map((r) => r.operation) }).toEqual({
          scenario: scenario.name,
          unknown: ["initiate"],
        })
        expect({ scenario: scenario.name, unnamed: unnamed.length }).toEqual({ scenario: scenario.name, unnamed: 1 })
      } else {
        expect({ scenario: scenario.name, unknown }).toEqual({ scenario: scenario.name, unknown: [] })
        expect({ scenario: scenario.name, unnamed }).toEqual({ scenario: scenario.name, unnamed: [] })
      }
      // Nothing the database names is gone at the provider, and the provider holds its amount.
      for (const session of sessions) {
        const intent = await psp.intent(session.data.id)
        expect({ scenario: scenario.name, session: session.id, canceled: intent.status === "canceled", amount: intent.amount }).toEqual({
          scenario: scenario.name,
          session: session.id,
          canceled: false,
          amount: session.amount,
        })
      }
      // Every authorization the provider reported to a backend is recorded.
      const authorizedAnswers = (await psp.history({ resourceId: scenario.collectionId, method: "authorizePayment" })).filter(
        (call) => call.outcome === "ok"
      )
      for (const call of authorizedAnswers) {
        const intent = await psp.intent(call.intentId!)
        if (intent.status !== "authorized") continue
        const session = sessions.find((s) => s.data?.id === intent.id)
        expect({ scenario: scenario.name, intent: intent.id, session: session?.status }).toEqual({
          scenario: scenario.name,
          intent: intent.id,
          session: "authorized",
        })
        expect(payments.filter((p) => p.provider_id === session.provider_id && p.amount === session.amount)).toHaveLength(1)
      }
      // The collection's own bookkeeping follows its sessions.
      const authorizedAmount = sessions
        .filter((s) => s.status === "authorized")
        .reduce((sum, s) => sum + s.amount, 0)
      const { rows: collection } = await db.query(`SELECT status, authorized_amount FROM payment_collection WHERE id = $1`, [
        scenario.collectionId,
      ])
      expect({ scenario: scenario.name, authorized: collection[0].authorized_amount ?? 0 }).toEqual({
        scenario: scenario.name,
        authorized: authorizedAmount,
      })
    }
    return took
  }

  async function waitForAnswered(list: Scenario[]) {
    await waitFor(
      "every request to have its provider calls answered",
      async () => {
        const rows = await journalRows(list.map((s) => s.collectionId))
        return list.every(
          (s) =>
            rows.filter((row) => row.payment_collection_id === s.collectionId && row.state === "answered").length >=
            s.answeredBeforeWrite
        )
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
        await waitForAnswered(list)
        kill(backend)
      } finally {
        await lock.release()
        lock = undefined
      }

      const restarted = await start()
      timings["after answer, before commit"] = await expectReconciled(list)
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
      // Slow providers leave time to lock each key's row between its claim and its commit.
      await psp.behaviour(
        Object.fromEntries(
          ["initiatePayment", "updatePayment", "authorizePayment", "deletePayment", "retrievePayment"].map((m) => [m, { delayMs: 400 }])
        )
      )
      fireAll(shop, list, (s) => ({ "idempotency-key": keyOf(s) }))
      const keys = list.map((s) => `pcp:${keyOf(s)}`)
      await waitFor("every key to be claimed", async () => {
        const { rows } = await db.query(`SELECT count(*)::int AS n FROM idempotency_key WHERE idempotency_key = ANY($1)`, [keys])
        return rows[0].n === keys.length
      })
      const lock = await holdLock(`SELECT * FROM idempotency_key WHERE idempotency_key = ANY($1) FOR UPDATE`, [keys])
      try {
        await waitFor(
          "every request to have committed and finished its calls",
          async () => {
            const rows = await journalRows(list.map((s) => s.collectionId))
            return list.every((s) => rows.some((r) => r.payment_collection_id === s.collectionId && r.state === "committed")) &&
              rows.every((r) => !["started", "answered"].includes(r.state))
          },
          { timeoutMs: 30_000 }
        )
        kill(backend)
      } finally {
        await lock.release()
      }
      await psp.behaviour({ initiatePayment: null, updatePayment: null, authorizePayment: null, deletePayment: null, retrievePayment: null })

      // The dead request's answer was stored before it could be sent (the statement was
      // waiting for the row lock): a client that retries with its key gets it.
      const retryShop = createApi(survivor.url)
      timings["after commit, before answer"] = await expectReconciled(list)
      for (const scenario of list) {
        const replay = await scenario.fire(retryShop, { "idempotency-key": keyOf(scenario) })
        expect({ scenario: scenario.name, status: replay.status, replayed: replay.headers["idempotent-replayed"] }).toEqual({
          scenario: scenario.name,
          status: 200,
          replayed: "true",
        })
      }
      await survivor.stop()
    },
    180_000
  )

  it(
    "killed in the middle of a removal: the removal is finished at the provider after the restart",
    async () => {
      const backend = await start()
      const shop = createApi(backend.url)
      const list = (await scenarios(shop)).filter((s) =>
        ["create (switching provider)", "batch (remove)", "refresh"].includes(s.name)
      )
      // The removed sessions' deletes: one of batch (remove) goes through, every other one hangs.
      const removed = await db.query(
        `SELECT ps.data->>'id' AS intent, l.payment_collection_id FROM payment_session ps
           JOIN payment_collection_sessions l ON l.payment_session_id = ps.id
          WHERE l.payment_collection_id = ANY($1) ORDER BY ps.created_at, ps.id`,
        [list.map((s) => s.collectionId)]
      )
      const batchRemove = list.find((s) => s.name === "batch (remove)")!
      const first = removed.rows.find((r) => r.payment_collection_id === batchRemove.collectionId).intent
      const others = removed.rows.map((r) => r.intent).filter((id) => id !== first)
      await psp.behaviour({ deletePayment: others.map((intentId) => ({ fail: "hang" as const, intentId })) })
      fireAll(shop, list)
      await waitFor(
        "the removals to be under way",
        async () => {
          const deletes = await psp.history({ method: "deletePayment" })
          return deletes.some((d) => d.intentId === first && d.outcome === "ok") && others.every((id) => deletes.some((d) => d.intentId === id))
        },
        { timeoutMs: 20_000 }
      )
      kill(backend)
      await psp.behaviour({ deletePayment: null })

      const restarted = await start()
      timings["middle of a removal"] = await expectReconciled(list)
      for (const id of removed.rows.map((r) => r.intent)) {
        expect(await psp.intent(id)).toMatchObject({ status: "canceled" })
      }
      await restarted.stop()
    },
    180_000
  )

  it(
    "killed while an initiate call is in flight: the one window left shows as `unknown` in the attempt log",
    async () => {
      const backend = await start()
      const shop = createApi(backend.url)
      const list = (await scenarios(shop)).filter((s) => s.name === "create")
      // The provider creates the intent, and its answer never reaches the backend.
      await psp.behaviour({ initiatePayment: { fail: "hang", afterEffect: true, provider: "test-pay" } })
      fireAll(shop, list)
      await waitFor("the intent to exist at the provider", async () => (await psp.intents({ resourceId: list[0].collectionId })).length === 1)
      kill(backend)
      await psp.behaviour({ initiatePayment: null })

      const restarted = await start()
      timings["initiate in flight"] = await expectReconciled(list, { unknownExpected: new Set(["create"]) })
      const log = await adminApi.get(`/admin/payment-collections/${list[0].collectionId}/attempts`)
      expect(log.body.attempts).toEqual([expect.objectContaining({ operation: "initiate", state: "unknown", provider_id: "test-pay" })])
      await restarted.stop()
    },
    120_000
  )

  it(
    "two backends on one database: one is killed mid-request, the other one reconciles while serving; a stuck Idempotency-Key is taken over only after the longest request",
    async () => {
      const [victim, survivor] = await Promise.all([start(KEY_OPTIONS), start(KEY_OPTIONS)])
      const shop = createApi(victim.url)
      const list = await scenarios(shop)
      const keyOf = (s: Scenario) => `crash-two-backends-${s.collectionId}`
      const lock = await holdLock(`LOCK TABLE ${SESSION_TABLES} IN SHARE MODE`)
      try {
        fireAll(shop, list, (s) => ({ "idempotency-key": keyOf(s) }))
        await waitForAnswered(list)
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

      timings["other backend reconciles"] = await expectReconciled(list)
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
