import { adminApi, adminHeaders, api, createApi, HttpResponse } from "./helpers/http"
import { createPaymentCollection, createRegion, db } from "./helpers/factories"
import { psp } from "./helpers/fake-psp"
import { startExtraBackend, stopExtraBackends, ExtraBackend } from "./helpers/backend"
import { collectionState, expectMedusaError } from "./helpers/collection-state"

// The admin switch for which installed payment providers payment collections may
// use: GET /admin/payment-collections/providers and
// POST /admin/payment-collections/providers/:provider_id { is_enabled }.

const PROVIDERS = "/admin/payment-collections/providers"
const BASE = "/store/payment-collections"

function setEnabled(providerId: string, isEnabled: unknown, client = adminApi): Promise<HttpResponse> {
  return client.post(`${PROVIDERS}/${providerId}`, { is_enabled: isEnabled })
}

async function settingRows(): Promise<any[]> {
  const { rows } = await db.query(
    `SELECT provider_id, is_enabled FROM payment_collection_provider_setting ORDER BY provider_id`
  )
  return rows
}

describe("Admin API: switching payment providers on and off for payment collections", () => {
  let regionId: string
  let regionRef: { id: string; name: string }

  beforeAll(async () => {
    const region = await createRegion({ providers: ["manual", "test-pay"] })
    regionId = region.id
    regionRef = { id: region.id, name: region.name }
  })

  beforeEach(() => psp.reset())

  // No row means enabled: removing the rows restores every provider's default.
  afterEach(async () => {
    await db.query(`DELETE FROM payment_collection_provider_setting`)
  })

  afterAll(async () => {
    await stopExtraBackends()
    await db.end()
  })

  describe("without an admin", () => {
    it.each([
      ["no token", {}],
      ["a wrong token", { "x-medusa-access-token": "pcp_not_the_admin_token" }],
      ["a wrong bearer token", { authorization: "Bearer pcp_not_a_jwt" }],
    ])("GET the providers with %s → 401", async (_name, headers) => {
      const res = await api.get(PROVIDERS, { headers })
      expect(res.status).toBe(401)
      expect(res.body).not.toHaveProperty("providers")
    })

    it.each([
      ["no token", {}],
      ["a wrong token", { "x-medusa-access-token": "pcp_not_the_admin_token" }],
    ])("POST a switch with %s → 401, nothing switched", async (_name, headers) => {
      const res = await api.post(`${PROVIDERS}/test-pay`, { is_enabled: false }, { headers })
      expect(res.status).toBe(401)
      expect(await settingRows()).toEqual([])
    })
  })

  it("lists every installed provider, each enabled by default", async () => {
    const res = await adminApi.get(PROVIDERS)

    expect(res.status).toBe(200)
    const { rows } = await db.query(`SELECT id FROM payment_provider WHERE is_installed ORDER BY id`)
    const installed = rows.map((r) => r.id)
    expect(installed).toEqual(expect.arrayContaining(["manual", "test-pay"]))
    const store = await adminApi.get("/admin/store/payment-providers")
    expect(store.body.payment_providers.map((p: { id: string }) => p.id).sort()).toEqual(installed)
    expect([...res.body.providers].sort((a: any, b: any) => a.id.localeCompare(b.id))).toEqual(
      installed.map((id) => ({ id, is_installed: true, is_enabled: true, regions: expect.any(Array) }))
    )
  })

  it("names the regions that offer each provider, and forgets a deleted region", async () => {
    const manualOnly = await createRegion({ providers: ["manual"] })
    const regionsOf = async (providerId: string) =>
      (await adminApi.get(PROVIDERS)).body.providers.find((p: any) => p.id === providerId).regions

    expect(await regionsOf("manual")).toEqual(
      expect.arrayContaining([regionRef, { id: manualOnly.id, name: manualOnly.name }])
    )
    expect(await regionsOf("test-pay")).toContainEqual(regionRef)
    expect(await regionsOf("test-pay")).not.toContainEqual(expect.objectContaining({ id: manualOnly.id }))

    expect((await adminApi.delete(`/admin/regions/${manualOnly.id}`)).status).toBe(200)
    expect(await regionsOf("manual")).not.toContainEqual(expect.objectContaining({ id: manualOnly.id }))
  })

  it("leaves out a provider that is registered but not installed, and answers 404 for it", async () => {
    await db.query(`INSERT INTO payment_provider (id, is_installed) VALUES ('pcp-uninstalled', false)`)
    try {
      const list = await adminApi.get(PROVIDERS)
      expect(list.status).toBe(200)
      expect(list.body.providers.map((p: { id: string }) => p.id)).not.toContain("pcp-uninstalled")

      expectMedusaError(await setEnabled("pcp-uninstalled", false), 404, "not_found")
      expect(await settingRows()).toEqual([])
    } finally {
      await db.query(`DELETE FROM payment_provider WHERE id = 'pcp-uninstalled'`)
    }
  })

  it.each([
    ["an unknown provider", "no-such-provider"],
    ["an empty-looking provider id", "%20"],
    ["a provider id with a NUL byte", "%00"],
    ["a provider id that is SQL", encodeURIComponent("' OR '1'='1")],
  ])("%s → 404 not_found, nothing switched", async (_name, segment) => {
    expectMedusaError(await setEnabled(segment, false), 404, "not_found")
    expect(await settingRows()).toEqual([])
  })

  it.each([
    ["no body", undefined],
    ["an empty object", {}],
    ["is_enabled the string \"false\"", { is_enabled: "false" }],
    ["is_enabled the string \"true\"", { is_enabled: "true" }],
    ["is_enabled 0", { is_enabled: 0 }],
    ["is_enabled null", { is_enabled: null }],
    ["is_enabled an array", { is_enabled: [false] }],
    ["an extra property", { is_enabled: false, provider_id: "manual" }],
    ["a JSON array", [{ is_enabled: false }]],
  ])("a bad body (%s) → 400 invalid_data, nothing switched", async (_name, body) => {
    expectMedusaError(await adminApi.post(`${PROVIDERS}/test-pay`, body), 400, "invalid_data")
    expect(await settingRows()).toEqual([])
  })

  it("a malformed JSON body → 400 invalid_data, nothing switched", async () => {
    const res = await adminApi.raw("POST", `${PROVIDERS}/test-pay`, '{"is_enabled":')
    expectMedusaError(res, 400, "invalid_data")
    expect(await settingRows()).toEqual([])
  })

  it("switches a provider off (200 { provider }), lists it so, and switches it on again", async () => {
    const off = await setEnabled("test-pay", false)
    expect(off.status).toBe(200)
    expect(off.body).toEqual({
      provider: {
        id: "test-pay",
        is_installed: true,
        is_enabled: false,
        regions: expect.arrayContaining([regionRef]),
      },
    })
    const listed = await adminApi.get(PROVIDERS)
    expect(listed.body.providers).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ id: "test-pay", is_installed: true, is_enabled: false }),
        expect.objectContaining({ id: "manual", is_installed: true, is_enabled: true }),
      ])
    )
    expect(listed.body.providers).toContainEqual(off.body.provider)

    const again = await setEnabled("test-pay", false)
    expect(again.status).toBe(200)
    expect(await settingRows()).toEqual([{ provider_id: "test-pay", is_enabled: false }])

    const on = await setEnabled("test-pay", true)
    expect(on.status).toBe(200)
    expect(on.body).toEqual({ provider: { ...off.body.provider, is_enabled: true } })
    expect((await adminApi.get(PROVIDERS)).body.providers).toContainEqual(on.body.provider)
  })

  describe("the store follows the switch on the next request", () => {
    let collection: any
    let testPaySessionId: string

    // A collection that already has a test-pay session, made while it was on.
    beforeEach(async () => {
      collection = await createPaymentCollection({ regionId, amount: 1000 })
      const res = await api.post(`${BASE}/${collection.id}/sessions`, { provider_id: "test-pay" })
      expect(res.status).toBe(200)
      testPaySessionId = res.body.payment_collection.payment_sessions[0].id
    })

    const storeCalls: [string, (id: string, sessionId: string) => Promise<HttpResponse>][] = [
      ["create a session", (id) => api.post(`${BASE}/${id}/sessions`, { provider_id: "test-pay" })],
      [
        "batch with a new test-pay session",
        (id) =>
          api.post(`${BASE}/${id}/sessions/batch`, {
            sessions: [
              { provider_id: "manual", amount: 500 },
              { provider_id: "test-pay", amount: 500 },
            ],
          }),
      ],
      [
        "batch keeping the existing test-pay session",
        (id, sessionId) =>
          api.post(`${BASE}/${id}/sessions/batch`, {
            sessions: [{ provider_id: "test-pay", amount: 1000, session_id: sessionId }],
          }),
      ],
      ["refresh the test-pay session", (id, sessionId) => api.post(`${BASE}/${id}/sessions/${sessionId}`)],
    ]

    it.each(storeCalls)("switched off: %s → 400 invalid_data, nothing changed, test-pay not called", async (_name, call) => {
      expect((await setEnabled("test-pay", false)).status).toBe(200)
      const before = await collectionState(collection.id)
      const callsBefore = (await psp.state()).calls

      const res = await call(collection.id, testPaySessionId)

      expectMedusaError(res, 400, "invalid_data")
      expect(res.body.message).toContain("test-pay")
      expect(await collectionState(collection.id)).toEqual(before)
      expect((await psp.state()).calls).toEqual(callsBefore)
    })

    it.each(storeCalls)("switched off and on again: %s → 200", async (_name, call) => {
      expect((await setEnabled("test-pay", false)).status).toBe(200)
      expect((await setEnabled("test-pay", true)).status).toBe(200)

      const res = await call(collection.id, testPaySessionId)

      expect(res.status).toBe(200)
      const sessions = (await collectionState(collection.id)).sessions
      expect(sessions.some((s) => s.provider_id === "test-pay")).toBe(true)
    })

    it("switching test-pay off leaves manual usable and existing sessions as they are", async () => {
      const before = await collectionState(collection.id)
      expect((await setEnabled("test-pay", false)).status).toBe(200)
      expect(await collectionState(collection.id)).toEqual(before)

      const other = await createPaymentCollection({ regionId, amount: 700 })
      const res = await api.post(`${BASE}/${other.id}/sessions`, { provider_id: "manual" })
      expect(res.status).toBe(200)
      expect(res.body.payment_collection.payment_sessions).toEqual([
        expect.objectContaining({ provider_id: "manual", amount: 700 }),
      ])
    })
  })

  // Both instances read the switch from the database on every request: what one
  // instance's admin switches, the other applies to its very next request.
  describe("across backend processes (no cache that can go stale)", () => {
    let extra: ExtraBackend

    beforeAll(async () => {
      extra = await startExtraBackend()
    }, 180_000)

    afterAll(async () => {
      await extra?.stop()
    })

    it("a switch made on one backend applies at once on the other, both ways", async () => {
      const extraStore = createApi(extra.url)
      const extraAdmin = createApi(extra.url, adminHeaders())
      const collection = await createPaymentCollection({ regionId, amount: 1000 })
      const create = (client: typeof api) =>
        client.post(`${BASE}/${collection.id}/sessions`, { provider_id: "test-pay" })

      // Warm both instances up, so anything they could cache is cached.
      expect((await create(extraStore)).status).toBe(200)
      expect((await create(api)).status).toBe(200)
      expect((await extraAdmin.get(PROVIDERS)).body.providers).toContainEqual(
        expect.objectContaining({ id: "test-pay", is_installed: true, is_enabled: true })
      )

      expect((await setEnabled("test-pay", false)).status).toBe(200)
      expectMedusaError(await create(extraStore), 400, "invalid_data")
      expect((await extraAdmin.get(PROVIDERS)).body.providers).toContainEqual(
        expect.objectContaining({ id: "test-pay", is_installed: true, is_enabled: false })
      )

      expect((await setEnabled("test-pay", true, extraAdmin)).status).toBe(200)
      expect((await create(api)).status).toBe(200)

      expect((await setEnabled("test-pay", false, extraAdmin)).status).toBe(200)
      expectMedusaError(await create(api), 400, "invalid_data")
    })
  })
})
