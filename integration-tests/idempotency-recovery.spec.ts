import crypto from "crypto"
import { ExtraBackend, startExtraBackend, stopExtraBackends } from "./helpers/backend"
import { Api, HttpResponse, createApi } from "./helpers/http"
import { createPaymentCollection, createRegion, db } from "./helpers/factories"
import { psp } from "./helpers/fake-psp"
import { waitForSettledJournal } from "./helpers/journal"
import { base, describeAnswer, linkedSessions, sleep, waitFor } from "./helpers/payments"

// Idempotency-Key recovery points (Stripe's "atomic phases"): a request's answer is decided at its
// commit and stored in the same transaction as the rows it answers. A process killed after that
// commit and before its HTTP answer leaves an answered key, so the client's retry — on any backend —
// replays the answer (for a refresh: the NEW session), where a re-run would find the old session
// gone and answer 404 for the key's lifetime. The deletes a request stages for after its commit
// (sessions it removed) run outside the key's claim: a retry while they hang gets the stored answer,
// not a 409 and not a second run. A key belongs to the collection it was first used on, and a key
// may not expire before the longest request can end (the options refuse a shorter TTL at boot).

const OPTIONS = { provider_timeout_ms: 1500, lock_timeout_ms: 1500, reconcile_interval_ms: 500, finder_settle_ms: 1000 }
// For the batch whose deletes hang: 2 s per delete, so that 8 s after its start the request is
// still deleting (its budget: lock_timeout_ms + 4 × provider_timeout_ms = 9.5 s, then one more call).
const SLOW_DELETES = { ...OPTIONS, provider_timeout_ms: 2000 }
const REPLAYED = "idempotent-replayed"
const newKey = () => `recovery-${crypto.randomBytes(8).toString("hex")}`
const withKey = (key: string) => ({ headers: { "Idempotency-Key": key } })

const optionsEnv = (options: unknown) => ({ env: { PAYMENT_COLLECTIONS_OPTIONS: JSON.stringify(options) } })

async function storedKey(key: string) {
  const { rows } = await db.query(
    `SELECT request_path, response_code, response_body, recovery_point FROM idempotency_key WHERE idempotency_key = $1`,
    [`pcp:${key}`]
  )
  return rows[0]
}

/** Sends again while the answer is 409 (the key's request still runs, as far as the key says), up to `forMs`. */
async function retryWhileConflict(send: () => Promise<HttpResponse>, forMs: number): Promise<{ res: HttpResponse; tries: number }> {
  const until = Date.now() + forMs
  let tries = 1
  let res = await send()
  while (res.status === 409 && Date.now() < until) {
    await sleep(500)
    res = await send()
    tries++
  }
  return { res, tries }
}

describe("Idempotency-Key recovery: answers stored with their rows", () => {
  let region: any
  /** Where retries go: a backend that did not run the first request. */
  let retryBackend: ExtraBackend
  let retry: Api
  const timings: Record<string, Record<string, number>> = {}

  beforeAll(async () => {
    retryBackend = await startExtraBackend(optionsEnv(OPTIONS))
    retry = createApi(retryBackend.url)
    region = await createRegion({ providers: ["manual", "test-pay", "test-fields"] })
  }, 180_000)

  beforeEach(() => psp.reset())

  afterAll(async () => {
    await psp.reset()
    await stopExtraBackends()
    await db.end()
    console.log(`idempotency recovery: ms from the first request: ${JSON.stringify(timings)}`)
  }, 60_000)

  /** The provider's live intents of the collection equal those its sessions name (what the reconciler leaves). */
  async function expectProviderMatchesDatabase(collectionId: string, timeoutMs = 20_000) {
    let named: string[] = []
    let live: string[] = []
    await waitFor(
      "the provider's live intents to be the database's",
      async () => {
        named = (await linkedSessions(collectionId)).map((s) => s.data?.id).filter(Boolean).sort()
        live = (await psp.liveIntents(collectionId)).map((i) => i.id).sort()
        return JSON.stringify(live) === JSON.stringify(named)
      },
      { timeoutMs, intervalMs: 200 }
    ).catch(() => undefined)
    expect(live).toEqual(named)
  }

  it(
    "a refresh killed after its commit, while the old session's delete hangs, retried with its key on another " +
      "backend → 200 naming the NEW session (replayed), never 404; the old intent is deleted afterwards",
    async () => {
      const doomed = await startExtraBackend(optionsEnv(OPTIONS))
      const collection = await createPaymentCollection({ regionId: region.id, amount: 1000 })
      const created = await retry.post(`${base(collection.id)}/sessions`, { provider_id: "test-pay" })
      expect(describeAnswer(created)).toBe("200")
      const old = created.body.payment_collection.payment_sessions[0]
      // The refresh deletes the old session at the provider after its commit, before its answer: that call hangs.
      await psp.behaviour({ deletePayment: { fail: "hang", times: 1 } })
      const key = newKey()
      const path = `${base(collection.id)}/sessions/${old.id}`
      const t0 = Date.now()

      const first = createApi(doomed.url)
        .post(path, undefined, withKey(key))
        .then((res) => ({ res }), (err: Error) => ({ err }))
      await waitFor("the old session's delete to hang at the provider", async () => (await psp.state()).inflight.deletePayment === 1, {
        timeoutMs: 10_000,
      })
      // Committed: the new session replaced the old one.
      const [replacement] = await linkedSessions(collection.id)
      expect(replacement.id).not.toBe(old.id)
      const keyAtKill = await storedKey(key)
      process.kill(doomed.pid, "SIGKILL")
      const killedAt = Date.now() - t0
      const lost = await first
      expect(lost).toHaveProperty("err")

      const { res: retried, tries } = await retryWhileConflict(() => retry.post(path, undefined, withKey(key)), 30_000)
      timings["refresh killed after its commit"] = { killedAt, retryAnswered: Date.now() - t0, tries }

      expect(describeAnswer(retried)).toBe("200")
      expect(retried.headers[REPLAYED]).toBe("true")
      expect(retried.body.payment_session).toMatchObject({ id: replacement.id, provider_id: "test-pay", amount: 1000 })
      expect(tries).toBe(1)
      // The answer was stored with the rows, in the transaction that committed them: before the process died.
      expect(keyAtKill).toMatchObject({ response_code: 200, recovery_point: "finished" })
      // Once more, later: the same answer, for the key's lifetime.
      const again = await retry.post(path, undefined, withKey(key))
      expect({ status: again.status, replayed: again.headers[REPLAYED], body: again.body }).toEqual({
        status: 200,
        replayed: "true",
        body: retried.body,
      })
      expect((await linkedSessions(collection.id)).map((s) => s.id)).toEqual([replacement.id])
      // The delete the dead process never finished is the reconciler's: the old intent goes.
      await expectProviderMatchesDatabase(collection.id)
      expect((await psp.intent(old.data.id)).status).toBe("canceled")
      await waitForSettledJournal(collection.id)
      expect((await psp.state()).calls.initiatePayment).toBe(2)
    },
    90_000
  )

  it(
    "a batch removing 10 sessions from a provider that hangs on delete, retried with the same key at 8 s → the " +
      "stored answer replayed while the first request still deletes, not a second run",
    async () => {
      const slow = await startExtraBackend(optionsEnv(SLOW_DELETES))
      const shop = createApi(slow.url)
      const collection = await createPaymentCollection({ regionId: region.id, amount: 1000 })
      const ten = Array.from({ length: 10 }, () => ({ provider_id: "test-pay", amount: 100 }))
      const filled = await shop.post(`${base(collection.id)}/sessions/batch`, { sessions: ten })
      expect(describeAnswer(filled)).toBe("200")
      expect(filled.body.payment_collection.payment_sessions).toHaveLength(10)
      await psp.behaviour({ deletePayment: { fail: "hang", provider: "test-pay" } })
      const key = newKey()
      const path = `${base(collection.id)}/sessions/batch`
      const body = { sessions: [{ provider_id: "test-fields", amount: 1000 }] }
      const t0 = Date.now()

      const first = shop.post(path, body, { ...withKey(key), timeoutMs: 60_000 }).then((res) => ({ res, at: Date.now() - t0 }))
      await sleep(8000 - (Date.now() - t0))
      const before = await psp.state()
      const retried = await retry.post(path, body, withKey(key))
      const retryAt = Date.now() - t0
      const after = await psp.state()
      const answered = await first
      timings["batch with hanging deletes"] = {
        retryAnswered: retryAt,
        firstAnswered: answered.at,
        deletesByThen: after.calls.deletePayment,
      }

      expect(describeAnswer(answered.res)).toBe("200")
      expect(answered.res.headers[REPLAYED]).toBeUndefined()
      const kept = answered.res.body.payment_collection.payment_sessions as any[]
      expect(kept).toEqual([expect.objectContaining({ provider_id: "test-fields", amount: 1000 })])
      // The retry came while the first request was still deleting, and got its stored answer.
      expect(retryAt).toBeLessThan(answered.at)
      expect(before.inflight.deletePayment).toBeGreaterThanOrEqual(1)
      expect(describeAnswer(retried)).toBe("200")
      expect(retried.headers[REPLAYED]).toBe("true")
      expect(retried.body).toEqual(answered.res.body)
      // Not a second run: nothing but the first request's deletes reached the provider meanwhile.
      for (const operation of ["initiatePayment", "getPaymentStatus", "updatePayment", "authorizePayment"] as const) {
        expect({ operation, calls: after.calls[operation] }).toEqual({ operation, calls: before.calls[operation] })
      }
      expect(after.callsByProvider["test-fields"]?.initiatePayment).toBe(1)
      expect((await linkedSessions(collection.id)).map((s) => s.id)).toEqual([kept[0].id])

      // The provider answers deletes again: what the request could not delete, the reconciler does.
      await psp.behaviour({ deletePayment: null })
      await expectProviderMatchesDatabase(collection.id, 40_000)
      expect((await psp.liveIntents(collection.id)).map((i) => i.provider)).toEqual(["test-fields"])
    },
    120_000
  )

  it("the same key on another collection → 422 naming the collection it was first used on, nothing run", async () => {
    const first = await createPaymentCollection({ regionId: region.id, amount: 500 })
    const other = await createPaymentCollection({ regionId: region.id, amount: 500 })
    const key = newKey()
    const used = await retry.post(`${base(first.id)}/sessions`, { provider_id: "test-pay" }, withKey(key))
    expect(describeAnswer(used)).toBe("200")
    const calls = (await psp.state()).calls

    for (const [path, body] of [
      [`${base(other.id)}/sessions`, { provider_id: "test-pay" }],
      [`${base(other.id)}/sessions/batch`, { sessions: [{ provider_id: "manual", amount: 500 }] }],
    ] as const) {
      const res = await retry.post(path, body, withKey(key))
      expect({ path, status: res.status, type: res.body.type, code: res.body.code }).toEqual({
        path,
        status: 422,
        type: "duplicate_error",
        code: "invalid_request_error",
      })
      expect(res.body.message).toContain(`first used on payment collection ${first.id}`)
    }
    expect(await linkedSessions(other.id)).toEqual([])
    expect((await psp.state()).calls).toEqual(calls)
    expect(await storedKey(key)).toMatchObject({ request_path: `${base(first.id)}/sessions`, response_code: 200 })
  })

  it("an idempotency_key_ttl_seconds shorter than the longest request refuses to boot, naming the bound", async () => {
    // 2 × lock_timeout_ms + 5 × provider_timeout_ms = 10.5 s: a key must live at least 11 s.
    let failure = ""
    try {
      const backend = await startExtraBackend(optionsEnv({ ...OPTIONS, idempotency_key_ttl_seconds: 10 }))
      await backend.stop()
    } catch (err) {
      failure = (err as Error).message
    }

    expect(failure).toMatch(/exited early \(1\)/)
    expect(failure).toContain("invalid plugin options")
    expect(failure).toContain(
      "option idempotency_key_ttl_seconds must be at least 11, the longest a request can run with these " +
        "lock_timeout_ms and provider_timeout_ms, got 10"
    )
  }, 120_000)
})
