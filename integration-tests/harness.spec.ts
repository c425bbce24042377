import { testEnv } from "./helpers/env"
import { adminApi, api, createApi } from "./helpers/http"
import { createPaymentCollection, createRegion, db } from "./helpers/factories"
import { startExtraBackend, stopExtraBackends } from "./helpers/backend"
import { psp } from "./helpers/fake-psp"

describe("integration harness", () => {
  let region: any

  beforeAll(async () => {
    region = await createRegion({ providers: ["manual", "test-pay"], currency: "usd" })
  })

  beforeEach(() => psp.reset())

  afterAll(async () => {
    await stopExtraBackends()
    await db.end()
  })

  it("boots a shared backend that answers GET /health", async () => {
    const res = await api.get("/health")
    expect(res.status).toBe(200)
    expect(res.text).toBe("OK")
    expect(testEnv().databaseName).toMatch(/^pcp_test_\d+_[0-9a-f]+$/)
  })

  it("serves the store API with permissive CORS", async () => {
    const res = await api.get("/store/regions", { headers: { origin: "http://localhost:8000" } })
    expect(res.status).toBe(200)
    expect(Array.isArray(res.body.regions)).toBe(true)
    expect(res.headers["access-control-allow-origin"]).toBe("http://localhost:8000")
  })

  it("authenticates the admin API with the test token, and only with it", async () => {
    expect((await adminApi.get("/admin/regions")).status).toBe(200)
    expect((await api.get("/admin/regions")).status).toBe(401)
    const wrong = await api.get("/admin/regions", { headers: { "x-medusa-access-token": "nope" } })
    expect(wrong.status).toBe(401)
  })

  it("has the four PSP-backed test providers installed: test-pay, test-fields, test-legacy, test-nofind", async () => {
    const res = await adminApi.get("/admin/store/payment-providers")
    expect(res.status).toBe(200)
    const ids = res.body.payment_providers.map((p: { id: string }) => p.id)
    expect(ids).toEqual(expect.arrayContaining(["manual", "test-pay", "test-fields", "test-legacy", "test-nofind"]))
    const { rows } = await db.query(
      `SELECT id, is_installed FROM payment_provider
        WHERE id IN ('test-pay', 'test-fields', 'test-legacy', 'test-nofind') ORDER BY id`
    )
    expect(rows).toEqual([
      { id: "test-fields", is_installed: true },
      { id: "test-legacy", is_installed: true },
      { id: "test-nofind", is_installed: true },
      { id: "test-pay", is_installed: true },
    ])
  })

  it("creates regions through the admin API with both providers", async () => {
    const providerIds = region.payment_providers.map((p: { id: string }) => p.id).sort()
    expect(providerIds).toEqual(["manual", "test-pay"])
    const res = await adminApi.get(`/admin/regions/${region.id}`)
    expect(res.status).toBe(200)
    expect(res.body.region.currency_code).toBe("usd")
    expect(res.body.region.payment_providers.map((p: { id: string }) => p.id).sort()).toEqual(["manual", "test-pay"])
  })

  it("inserts payment collections that the store API can read", async () => {
    const collection = await createPaymentCollection({ regionId: region.id, amount: 5000 })
    expect(collection.id).toMatch(/^paycol_[0-9A-Z]{26}$/)
    const res = await api.get(`/store/payment-collections/${collection.id}`)
    expect(res.status).toBe(200)
    expect(res.body.payment_collection).toMatchObject({ id: collection.id, amount: 5000, status: "not_paid" })
  })

  it("runs one fake PSP with its state, behaviours and reset, that refuses bad behaviours with 400", async () => {
    const fresh = await psp.state()
    expect(fresh.calls.initiatePayment).toBe(0)
    expect(fresh.intents).toEqual([])
    expect((await fetch(`${psp.url}/health`)).status).toBe(200)

    await psp.behaviour({ authorizePayment: { delayMs: 5 } })
    await psp.behaviour({ initiatePayment: { fail: "refuse", times: 1, provider: "test-pay" } })
    expect((await psp.state()).behaviours).toEqual({
      authorizePayment: [{ delayMs: 5 }],
      initiatePayment: [{ fail: "refuse", times: 1, provider: "test-pay" }],
    })

    const bad = await createApi(psp.url).post("/test/behaviours", { chargeCard: { fail: "throw" } })
    expect(bad.status).toBe(400)
    expect(bad.body.error.message).toContain("unknown operation chargeCard")

    await psp.reset()
    expect((await psp.state()).behaviours).toEqual({})
  })

  it("is called by Medusa when a store client creates a test-pay session", async () => {
    const collection = await createPaymentCollection({ regionId: region.id, amount: 4200 })
    await psp.behaviour({ initiatePayment: { fail: "refuse", times: 1 } })

    const refused = await api.post(`/store/payment-collections/${collection.id}/sessions`, { provider_id: "test-pay" })
    expect(refused.status).toBeGreaterThanOrEqual(400)
    expect(refused.body.message).toContain("test-pay refused initiatePayment")

    const ok = await api.post(`/store/payment-collections/${collection.id}/sessions`, { provider_id: "test-pay" })
    expect(ok.status).toBe(200)

    const state = await psp.state()
    expect(state.calls.initiatePayment).toBe(2)
    expect(state.intents).toHaveLength(1)
    expect(state.intents[0]).toMatchObject({
      status: "pending",
      amount: 4200,
      currency_code: "usd",
      resource_id: collection.id,
      provider: "test-pay",
    })
  })

  it("starts an extra backend on the shared database, whose providers call the same PSP", async () => {
    const extra = await startExtraBackend()
    try {
      expect(extra.url).not.toBe(testEnv().backendUrl)
      const res = await createApi(extra.url).get(`/store/regions/${region.id}`)
      expect(res.status).toBe(200)
      expect(res.body.region.id).toBe(region.id)

      const collection = await createPaymentCollection({ regionId: region.id, amount: 900 })
      const created = await createApi(extra.url).post(`/store/payment-collections/${collection.id}/sessions`, {
        provider_id: "test-pay",
      })
      expect(created.status).toBe(200)
      const [call] = await psp.history({ method: "initiatePayment", resourceId: collection.id })
      expect(call).toMatchObject({ provider: "test-pay", pid: extra.pid, outcome: "ok" })
    } finally {
      await extra.stop()
    }
    await expect(fetch(`${extra.url}/health`)).rejects.toThrow()
  })
})
