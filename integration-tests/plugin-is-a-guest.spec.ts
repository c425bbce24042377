import path from "path"
import { ExtraBackend, startExtraBackend, stopExtraBackends } from "./helpers/backend"
import { Api, createApi } from "./helpers/http"
import { createPaymentCollection, createRegion, db } from "./helpers/factories"
import { psp } from "./helpers/fake-psp"
import { base } from "./helpers/payments"

// The plugin is a guest in the merchant's backend: after it has served every
// endpoint — successes, refusals, crashes, timeouts and late answers, with a
// processor, a legacy payment service and a provider whose methods are
// instance fields — no method on any payment provider's class differs from
// what the host booted with, and the plugin has created no AsyncLocalStorage
// (whose first run() turns on promise hooks for the whole process).
//
// The backend runs with the host-introspection fixture (a boot-time snapshot of
// every provider's prototype chain) and its preload (which records every
// AsyncLocalStorage created in the process, with its stack).

const PLUGIN_DIST = path.resolve(__dirname, "..", "dist") + path.sep
const PRELOAD = path.resolve(__dirname, "fixtures", "host-introspection", "preload.js")
const PROVIDER_TIMEOUT_MS = 800
const PROVIDERS = ["manual", "test-pay", "test-legacy", "test-fields"]

type Guest = {
  recorded: { providerId: string; className: string; keys: number }[]
  prototypeChanges: { providerId: string; className: string; key: string; change: string }[]
  asyncLocalStorages: string[] | null
}

describe("the plugin is a guest in the host backend", () => {
  let backend: ExtraBackend
  let shop: Api
  let region: any

  beforeAll(async () => {
    backend = await startExtraBackend({
      env: {
        NODE_OPTIONS: `--require ${PRELOAD}`,
        PAYMENT_COLLECTIONS_OPTIONS: JSON.stringify({ provider_timeout_ms: PROVIDER_TIMEOUT_MS }),
      },
    })
    shop = createApi(backend.url)
    region = await createRegion({ providers: PROVIDERS })
  }, 180_000)

  beforeEach(() => psp.reset())

  afterAll(async () => {
    await psp.reset()
    await stopExtraBackends()
    await db.end()
  }, 60_000)

  async function guest(): Promise<Guest> {
    const res = await shop.get("/host-introspection/guest")
    expect(res.status).toBe(200)
    return res.body
  }

  /** Every endpoint of the group, the way a storefront uses it, for one provider. */
  async function exerciseEveryEndpoint(providerId: string) {
    const collection = await createPaymentCollection({ regionId: region.id, amount: 1000 })
    const created = await shop.post(`${base(collection.id)}/sessions`, { provider_id: providerId })
    expect(created.status).toBe(200)
    expect((await shop.get(base(collection.id))).status).toBe(200)
    expect((await shop.post(`${base(collection.id)}/sessions`, { provider_id: providerId })).status).toBe(200)

    const [first] = created.body.payment_collection.payment_sessions
    const batch = await shop.post(`${base(collection.id)}/sessions/batch`, {
      sessions: [
        { provider_id: providerId, amount: 600, session_id: first.id },
        { provider_id: "manual", amount: 400 },
      ],
    })
    expect(batch.status).toBe(200)
    const refreshed = await shop.post(`${base(collection.id)}/sessions/${first.id}`)
    expect(refreshed.status).toBe(200)

    const sessions = (await shop.get(base(collection.id))).body.payment_collection.payment_sessions
    for (const session of sessions) {
      if (session.provider_id !== "manual") await psp.confirmSession(session)
    }
    const authorized = await shop.post(`${base(collection.id)}/sessions/batch/authorize`, {
      session_ids: sessions.map((s: { id: string }) => s.id),
    })
    expect(authorized.status).toBe(200)
    expect(authorized.body.payment_collection.status).toBe("authorized")

    const single = await createPaymentCollection({ regionId: region.id, amount: 700 })
    const one = await shop.post(`${base(single.id)}/sessions`, { provider_id: providerId })
    const session = one.body.payment_collection.payment_sessions[0]
    if (providerId !== "manual") await psp.confirmSession(session)
    expect((await shop.post(`${base(single.id)}/sessions/${session.id}/authorize`)).status).toBe(200)
  }

  /** Refusals, crashes, a timeout and a late answer: the paths that finish what a request left. */
  async function exerciseFailures(providerId: string) {
    const collection = await createPaymentCollection({ regionId: region.id, amount: 1000 })
    await psp.behaviour({ initiatePayment: { fail: "refuse", times: 1, provider: providerId } })
    expect((await shop.post(`${base(collection.id)}/sessions`, { provider_id: providerId })).status).toBe(400)

    const created = await shop.post(`${base(collection.id)}/sessions`, { provider_id: providerId })
    expect(created.status).toBe(200)
    const [session] = created.body.payment_collection.payment_sessions

    // A batch whose second new session crashes: the first one is taken back.
    await psp.behaviour({ initiatePayment: { fail: "throw", times: 1, provider: "test-pay" } })
    const crashed = await shop.post(`${base(collection.id)}/sessions/batch`, {
      sessions: [
        { provider_id: providerId, amount: 500, session_id: session.id },
        { provider_id: "test-pay", amount: 500 },
      ],
    })
    expect(crashed.status).toBe(502)

    // An update that answers after the timeout, and the late answer taken back.
    await psp.behaviour({ updatePayment: { delayMs: PROVIDER_TIMEOUT_MS * 2, afterEffect: true, times: 1, provider: providerId } })
    const late = await shop.post(`${base(collection.id)}/sessions/batch`, {
      sessions: [
        { provider_id: providerId, amount: 900, session_id: session.id },
        { provider_id: "manual", amount: 100 },
      ],
    })
    expect(late.status).toBe(504)
    await new Promise((resolve) => setTimeout(resolve, PROVIDER_TIMEOUT_MS * 3))

    // An authorization that times out, then arrives late and is recorded.
    await psp.confirmSession(session)
    await psp.behaviour({ authorizePayment: { delayMs: PROVIDER_TIMEOUT_MS * 2, times: 1, provider: providerId } })
    const timedOut = await shop.post(`${base(collection.id)}/sessions/${session.id}/authorize`)
    expect(timedOut.status).toBe(504)
    await new Promise((resolve) => setTimeout(resolve, PROVIDER_TIMEOUT_MS * 3))
  }

  it("the detector works: an AsyncLocalStorage made in the process is reported with its stack", async () => {
    const before = (await guest()).asyncLocalStorages
    expect(before).not.toBeNull()
    expect((await shop.post("/host-introspection/async-local-storage")).status).toBe(200)
    const after = (await guest()).asyncLocalStorages!
    expect(after.length).toBe(before!.length + 1)
    expect(after[after.length - 1]).toContain(`host-introspection${path.sep}api`)
  })

  it("recorded every installed provider's class at boot", async () => {
    const { recorded } = await guest()
    expect([...new Set(recorded.map((r) => r.providerId))].sort()).toEqual(expect.arrayContaining(PROVIDERS))
  })

  it(
    "after serving every endpoint with every kind of provider, no provider's prototype changed and the plugin made no AsyncLocalStorage",
    async () => {
      for (const providerId of PROVIDERS) {
        await exerciseEveryEndpoint(providerId)
      }
      for (const providerId of PROVIDERS.filter((p) => p !== "manual")) {
        await exerciseFailures(providerId)
      }

      const { prototypeChanges, asyncLocalStorages } = await guest()
      expect(prototypeChanges).toEqual([])
      expect(asyncLocalStorages!.filter((stack) => stack.includes(PLUGIN_DIST))).toEqual([])
    },
    180_000
  )
})
