import crypto from "crypto"
import { api, Api, createApi, HttpResponse } from "./helpers/http"
import { createPaymentCollection, createRegion, db } from "./helpers/factories"
import { psp, PspOperation } from "./helpers/fake-psp"
import { ExtraBackend, startExtraBackend, stopExtraBackends } from "./helpers/backend"
import { holdLock, linkedSessions, sleep, waitFor } from "./helpers/payments"

// Idempotency-Key on the group's POSTs, Stripe's semantics: a replay answers the
// stored status and body without running the request again.

const REPLAYED = "idempotent-replayed"
const base = (id: string) => `/store/payment-collections/${id}`
const newKey = () => `key-${crypto.randomBytes(8).toString("hex")}`
const withKey = (key: string) => ({ headers: { "Idempotency-Key": key } })

async function storedKey(key: string) {
  const { rows } = await db.query(
    `SELECT request_method, request_path, response_code, response_body FROM idempotency_key WHERE idempotency_key = $1`,
    [`pcp:${key}`]
  )
  return rows[0]
}

function expectError(res: HttpResponse, status: number, type: string, code?: string) {
  expect({ status: res.status, type: res.body?.type, ...(code ? { code: res.body?.code } : {}) }).toEqual({
    status,
    type,
    ...(code ? { code } : {}),
  })
}

describe("Idempotency-Key on the Payment Collections POSTs", () => {
  let region: any

  beforeAll(async () => {
    region = await createRegion({ providers: ["manual", "test-pay"] })
  })

  beforeEach(() => psp.reset())

  afterAll(async () => {
    await stopExtraBackends()
    await db.end()
  }, 60_000)

  async function newCollection(amount = 1000) {
    return createPaymentCollection({ regionId: region.id, amount })
  }

  async function testPaySession(collectionId: string, on: Api = api) {
    const res = await on.post(`${base(collectionId)}/sessions`, { provider_id: "test-pay" })
    expect(res.status).toBe(200)
    return res.body.payment_collection.payment_sessions[0]
  }

  /** A test-pay session whose shopper confirmed the payment at the PSP: ready to authorize. */
  async function confirmedTestPaySession(collectionId: string) {
    const session = await testPaySession(collectionId)
    await psp.confirmSession(session)
    return session
  }

  type Case = {
    endpoint: string
    method: PspOperation
    request: (collectionId: string) => Promise<{ path: string; body?: unknown }>
  }

  const cases: Case[] = [
    {
      endpoint: "POST /:id/sessions (Create a Payment Session)",
      method: "initiatePayment",
      request: async (id) => ({ path: `${base(id)}/sessions`, body: { provider_id: "test-pay" } }),
    },
    {
      endpoint: "POST /:id/sessions/batch (Manage Payment Sessions)",
      method: "initiatePayment",
      request: async (id) => ({
        path: `${base(id)}/sessions/batch`,
        body: {
          sessions: [
            { provider_id: "test-pay", amount: 600 },
            { provider_id: "manual", amount: 400 },
          ],
        },
      }),
    },
    {
      endpoint: "POST /:id/sessions/batch/authorize (Authorize Payment Sessions)",
      method: "authorizePayment",
      request: async (id) => {
        const session = await confirmedTestPaySession(id)
        return { path: `${base(id)}/sessions/batch/authorize`, body: { session_ids: [session.id] } }
      },
    },
    {
      endpoint: "POST /:id/sessions/:session_id (Refresh a Payment Session)",
      method: "initiatePayment",
      request: async (id) => {
        const session = await testPaySession(id)
        return { path: `${base(id)}/sessions/${session.id}` }
      },
    },
    {
      endpoint: "POST /:id/sessions/:session_id/authorize (Authorize a Payment Session)",
      method: "authorizePayment",
      request: async (id) => {
        const session = await confirmedTestPaySession(id)
        return { path: `${base(id)}/sessions/${session.id}/authorize` }
      },
    },
  ]

  describe.each(cases)("$endpoint", ({ method, request }) => {
    it("same key, same request → the first answer replayed (status, body, idempotent-replayed: true), the provider not called again", async () => {
      const collection = await newCollection()
      const { path, body } = await request(collection.id)
      const key = newKey()
      const before = (await psp.state()).calls[method]

      const first = await api.post(path, body, withKey(key))
      const callsAfterFirst = (await psp.state()).calls[method]
      const replay = await api.post(path, body, withKey(key))

      expect(first.status).toBe(200)
      expect(first.headers[REPLAYED]).toBeUndefined()
      expect(replay.status).toBe(200)
      expect(replay.headers[REPLAYED]).toBe("true")
      expect(replay.body).toEqual(first.body)
      expect(callsAfterFirst - before).toBe(1)
      expect((await psp.state()).calls[method]).toBe(callsAfterFirst)
      expect(await storedKey(key)).toMatchObject({ request_method: "POST", request_path: path, response_code: 200 })
    })

    it("same key on another collection's path → 422 duplicate_error / invalid_request_error, nothing run", async () => {
      const collection = await newCollection()
      const other = await newCollection()
      const { path, body } = await request(collection.id)
      const { path: otherPath, body: otherBody } = await request(other.id)
      const key = newKey()
      expect((await api.post(path, body, withKey(key))).status).toBe(200)
      const calls = (await psp.state()).calls

      const res = await api.post(otherPath, otherBody, withKey(key))

      expectError(res, 422, "duplicate_error", "invalid_request_error")
      expect((await psp.state()).calls).toEqual(calls)
    })
  })

  it("same key with a different body → 422 duplicate_error / invalid_request_error, nothing run", async () => {
    const collection = await newCollection()
    const key = newKey()
    const first = await api.post(`${base(collection.id)}/sessions`, { provider_id: "test-pay" }, withKey(key))
    expect(first.status).toBe(200)

    const res = await api.post(`${base(collection.id)}/sessions`, { provider_id: "manual" }, withKey(key))

    expectError(res, 422, "duplicate_error", "invalid_request_error")
    expect((await linkedSessions(collection.id)).map((r) => r.provider_id)).toEqual(["test-pay"])
    expect((await psp.state()).intents).toHaveLength(1)
  })

  it("the body's key order does not make it a different request", async () => {
    const collection = await newCollection()
    const key = newKey()
    const path = `${base(collection.id)}/sessions/batch`
    const first = await api.post(path, { sessions: [{ provider_id: "test-pay", amount: 1000 }] }, withKey(key))
    const replay = await api.post(path, { sessions: [{ amount: 1000, provider_id: "test-pay" }] }, withKey(key))
    expect(first.status).toBe(200)
    expect(replay.status).toBe(200)
    expect(replay.headers[REPLAYED]).toBe("true")
    expect((await psp.state()).calls.initiatePayment).toBe(1)
  })

  it("same key while the first request still runs → 409 conflict; afterwards the first answer is replayed", async () => {
    const collection = await newCollection()
    const key = newKey()
    const path = `${base(collection.id)}/sessions`
    await psp.behaviour({ initiatePayment: { delayMs: 1500 } })

    const firstPending = api.post(path, { provider_id: "test-pay" }, withKey(key))
    await waitFor("the first request to reach the provider", async () => (await psp.state()).inflight.initiatePayment === 1)
    const second = await api.post(path, { provider_id: "test-pay" }, withKey(key))
    const first = await firstPending
    const third = await api.post(path, { provider_id: "test-pay" }, withKey(key))

    expectError(second, 409, "conflict")
    expect(second.headers[REPLAYED]).toBeUndefined()
    expect(first.status).toBe(200)
    expect(third.status).toBe(200)
    expect(third.headers[REPLAYED]).toBe("true")
    expect(third.body).toEqual(first.body)
    expect((await psp.state()).calls.initiatePayment).toBe(1)
  })

  it("10 parallel requests with one key: one runs, the others answer 409 or the replay", async () => {
    const collection = await newCollection()
    const key = newKey()
    const path = `${base(collection.id)}/sessions`
    await psp.behaviour({ initiatePayment: { delayMs: 200 } })

    const answers = await Promise.all(
      Array.from({ length: 10 }, () => api.post(path, { provider_id: "test-pay" }, withKey(key)))
    )

    const ran = answers.filter((r) => r.status === 200 && !r.headers[REPLAYED])
    const replayed = answers.filter((r) => r.status === 200 && r.headers[REPLAYED] === "true")
    const conflicts = answers.filter((r) => r.status === 409 && r.body.type === "conflict")
    expect(ran).toHaveLength(1)
    expect(replayed.length + conflicts.length).toBe(9)
    for (const r of replayed) expect(r.body).toEqual(ran[0].body)
    expect((await psp.state()).calls.initiatePayment).toBe(1)
  })

  it("a 4xx answer is stored and replayed, even when a re-run would now succeed", async () => {
    const collection = await newCollection()
    const key = newKey()
    const path = `${base(collection.id)}/sessions`
    await psp.behaviour({ initiatePayment: { fail: "refuse", times: 1 } })

    const first = await api.post(path, { provider_id: "test-pay" }, withKey(key))
    const replay = await api.post(path, { provider_id: "test-pay" }, withKey(key))

    expectError(first, 400, "invalid_data")
    expectError(replay, 400, "invalid_data")
    expect(replay.headers[REPLAYED]).toBe("true")
    expect(replay.body).toEqual(first.body)
    expect((await psp.state()).calls.initiatePayment).toBe(1)
    expect(await storedKey(key)).toMatchObject({ response_code: 400 })
    // The provider would accept now: without the key the request runs.
    expect((await api.post(path, { provider_id: "test-pay" })).status).toBe(200)
  })

  it("a body that fails validation claims no key (Stripe's rule): the same key with the corrected body runs", async () => {
    const collection = await newCollection()
    const key = newKey()
    const path = `${base(collection.id)}/sessions`

    const invalid = await api.post(path, { provider_id: 42 }, withKey(key))
    expectError(invalid, 400, "invalid_data")
    expect(await storedKey(key)).toBeUndefined()

    const corrected = await api.post(path, { provider_id: "test-pay" }, withKey(key))
    expect(corrected.status).toBe(200)
    expect(corrected.headers[REPLAYED]).toBeUndefined()
    expect(await storedKey(key)).toMatchObject({ response_code: 200 })
  })

  it("a 5xx answer is not stored: the retry with the same key runs again", async () => {
    const collection = await newCollection()
    const key = newKey()
    const path = `${base(collection.id)}/sessions`
    await psp.behaviour({ initiatePayment: { fail: "throw", times: 1 } })

    const first = await api.post(path, { provider_id: "test-pay" }, withKey(key))
    expectError(first, 502, "unexpected_state", "payment_provider_error")
    expect(await storedKey(key)).toBeUndefined()

    const retry = await api.post(path, { provider_id: "test-pay" }, withKey(key))
    expect(retry.status).toBe(200)
    expect(retry.headers[REPLAYED]).toBeUndefined()
    expect((await psp.state()).calls.initiatePayment).toBe(2)
    expect(await storedKey(key)).toMatchObject({ response_code: 200 })
  })

  it("an Idempotency-Key longer than 255 characters → 400 invalid_data", async () => {
    const collection = await newCollection()
    const res = await api.post(`${base(collection.id)}/sessions`, { provider_id: "manual" }, withKey("k".repeat(256)))
    expectError(res, 400, "invalid_data")
    expect(await linkedSessions(collection.id)).toEqual([])
  })

  describe("on a backend with lock_timeout_ms 1000", () => {
    let backend: ExtraBackend

    beforeAll(async () => {
      backend = await startExtraBackend({
        env: { PAYMENT_COLLECTIONS_OPTIONS: JSON.stringify({ lock_timeout_ms: 1000 }) },
      })
    }, 180_000)

    afterAll(() => backend.stop(), 60_000)

    it("a 409 (collection busy) is not stored: the retry with the same key runs", async () => {
      const collection = await newCollection()
      const key = newKey()
      const extra = createApi(backend.url)
      const path = `${base(collection.id)}/sessions`
      const lock = await holdLock(`SELECT id FROM payment_collection WHERE id = $1 FOR UPDATE`, [collection.id])
      let busy: HttpResponse
      try {
        busy = await extra.post(path, { provider_id: "manual" }, withKey(key))
      } finally {
        await lock.release()
      }
      expectError(busy, 409, "conflict")
      expect(await storedKey(key)).toBeUndefined()

      const retry = await extra.post(path, { provider_id: "manual" }, withKey(key))
      expect(retry.status).toBe(200)
      expect(retry.headers[REPLAYED]).toBeUndefined()
      expect((await linkedSessions(collection.id)).map((r) => r.provider_id)).toEqual(["manual"])
    })
  })

  describe("on a backend with idempotency_key_ttl_seconds 2", () => {
    let backend: ExtraBackend

    beforeAll(async () => {
      // A key must outlive the longest request (2 × 200 + 5 × 250 ms here): the options refuse a shorter one.
      const options = { idempotency_key_ttl_seconds: 2, lock_timeout_ms: 200, provider_timeout_ms: 250, reconcile_interval_ms: 500 }
      backend = await startExtraBackend({ env: { PAYMENT_COLLECTIONS_OPTIONS: JSON.stringify(options) } })
    }, 180_000)

    afterAll(() => backend.stop(), 60_000)

    it("an expired key runs the request again", async () => {
      const collection = await newCollection()
      const key = newKey()
      const extra = createApi(backend.url)
      const path = `${base(collection.id)}/sessions`

      const first = await extra.post(path, { provider_id: "test-pay" }, withKey(key))
      expect(first.status).toBe(200)
      const firstSession = first.body.payment_collection.payment_sessions[0]
      // Change the state so that a replay and a re-run answer differently.
      expect((await extra.post(path, { provider_id: "manual" })).status).toBe(200)
      await sleep(3000)

      const again = await extra.post(path, { provider_id: "test-pay" }, withKey(key))

      expect(again.status).toBe(200)
      expect(again.headers[REPLAYED]).toBeUndefined()
      const session = again.body.payment_collection.payment_sessions[0]
      expect(session.provider_id).toBe("test-pay")
      expect(session.id).not.toBe(firstSession.id)
      expect((await psp.state()).calls.initiatePayment).toBe(2)
      expect((await linkedSessions(collection.id)).map((r) => r.id)).toEqual([session.id])
    })

    it("the reconciler deletes expired keys", async () => {
      const collection = await newCollection()
      const key = newKey()
      const answered = await createApi(backend.url).post(`${base(collection.id)}/sessions`, { provider_id: "manual" }, withKey(key))
      expect(answered.status).toBe(200)
      expect(await storedKey(key)).toMatchObject({ response_code: 200 })

      await waitFor("the expired key to be deleted", async () => (await storedKey(key)) === undefined, { timeoutMs: 10_000 })
    })
  })
})
