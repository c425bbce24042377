import { startExtraBackend, stopExtraBackends, ExtraBackend } from "./helpers/backend"
import { api, createApi, Api } from "./helpers/http"
import { createPaymentCollection, createRegion, db } from "./helpers/factories"
import { psp } from "./helpers/fake-psp"

/** The keys of an object and, one level down, of its object/array members. */
function shape(value: any): unknown {
  if (Array.isArray(value)) {
    return value.length ? [shape(value[0])] : []
  }
  if (value && typeof value === "object" && !(value instanceof Date)) {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, value[k] && typeof value[k] === "object" ? shape(value[k]) : typeof value[k]])
    )
  }
  return typeof value
}

/**
 * The answer with every value replaced by its type, keys kept in their order:
 * two answers that differ only in ids, times and provider data serialize alike.
 */
function keyOrder(body: unknown): string {
  return JSON.stringify(body, (_key, value) => (value !== null && typeof value === "object" ? value : typeof value))
}

function withoutVolatile(collection: any) {
  // Session data carries provider ids; timestamps of writes differ per call.
  return JSON.parse(JSON.stringify(collection), (key, value) =>
    ["updated_at"].includes(key) ? undefined : value
  )
}

describe("drop-in compatibility with core 1.20.11 on the same database", () => {
  let core: ExtraBackend
  let coreApi: Api
  let region: any

  beforeAll(async () => {
    core = await startExtraBackend({ env: { HOST_WITHOUT_PLUGIN: "1" } })
    coreApi = createApi(core.url)
    region = await createRegion({ providers: ["manual", "test-pay"] })
  }, 120_000)

  beforeEach(() => psp.reset())

  afterAll(async () => {
    await stopExtraBackends()
    await db.end()
  })

  it("core's backend is core's: it answers malformed JSON with an HTML page, the plugin with Medusa's error body", async () => {
    const collection = await createPaymentCollection({ regionId: region.id, amount: 100 })
    const path = `/store/payment-collections/${collection.id}/sessions`
    const fromCore = await coreApi.raw("POST", path, "{")
    const fromPlugin = await api.raw("POST", path, "{")
    expect(fromCore.headers["content-type"]).toMatch(/^text\/html/)
    expect(fromCore.headers["x-payment-collections-plugin"]).toBeUndefined()
    expect(fromPlugin.status).toBe(400)
    expect(fromPlugin.body.type).toBe("invalid_data")
  })

  it("GET answers exactly what core answers, with and without fields/expand", async () => {
    const collection = await createPaymentCollection({ regionId: region.id, amount: 2500, description: "x" })
    expect((await api.post(`/store/payment-collections/${collection.id}/sessions`, { provider_id: "manual" })).status).toBe(200)

    for (const query of ["", "?fields=id,amount,status", "?expand=payment_sessions", "?fields=id&expand=region"]) {
      const path = `/store/payment-collections/${collection.id}${query}`
      const fromCore = await coreApi.get(path)
      const fromPlugin = await api.get(path)
      expect({ query, status: fromPlugin.status }).toEqual({ query, status: fromCore.status })
      expect(fromPlugin.body).toEqual(fromCore.body)
    }
    // Byte for byte, key order included, where the plugin answers itself.
    const path = `/store/payment-collections/${collection.id}`
    expect((await api.get(path)).text).toBe((await coreApi.get(path)).text)
  })

  it("every session endpoint lists the same keys in the same order as core", async () => {
    const orders: Record<string, string[]> = {}
    for (const [target, client] of [["core", coreApi], ["plugin", api]] as const) {
      const answers: Record<string, unknown> = {}
      const fresh = async () => (await createPaymentCollection({ regionId: region.id, amount: 1000 })).id
      const one = await fresh()
      const created = await client.post(`/store/payment-collections/${one}/sessions`, { provider_id: "test-pay" })
      answers.create = created.body
      answers.repost = (await client.post(`/store/payment-collections/${one}/sessions`, { provider_id: "test-pay" })).body
      const sessionId = created.body.payment_collection.payment_sessions[0].id
      answers.refresh = (await client.post(`/store/payment-collections/${one}/sessions/${sessionId}`)).body

      const two = await fresh()
      answers.batch = (
        await client.post(`/store/payment-collections/${two}/sessions/batch`, {
          sessions: [
            { provider_id: "manual", amount: 400 },
            { provider_id: "test-pay", amount: 600 },
          ],
        })
      ).body
      const ids = (answers.batch as any).payment_collection.payment_sessions.map((s: any) => s.id)
      answers.batchAgain = (
        await client.post(`/store/payment-collections/${two}/sessions/batch`, {
          sessions: [
            { provider_id: "manual", amount: 500, session_id: ids[0] },
            { provider_id: "test-pay", amount: 500, session_id: ids[1] },
          ],
        })
      ).body
      const authorizeIds = (answers.batchAgain as any).payment_collection.payment_sessions.map((s: any) => s.id)
      answers.batchAuthorize = (
        await client.post(`/store/payment-collections/${two}/sessions/batch/authorize`, { session_ids: authorizeIds })
      ).body

      const three = await fresh()
      const single = await client.post(`/store/payment-collections/${three}/sessions`, { provider_id: "manual" })
      const singleId = single.body.payment_collection.payment_sessions[0].id
      answers.singleAuthorize = (await client.post(`/store/payment-collections/${three}/sessions/${singleId}/authorize`)).body
      orders[target] = Object.entries(answers).map(([name, body]) => `${name} ${keyOrder(body)}`)
    }
    expect(orders.plugin).toEqual(orders.core)
  })

  it("GET of an unknown collection: same status and error type as core", async () => {
    const fromCore = await coreApi.get("/store/payment-collections/paycol_missing")
    const fromPlugin = await api.get("/store/payment-collections/paycol_missing")
    expect(fromPlugin.status).toBe(fromCore.status)
    expect(fromPlugin.body.type).toBe(fromCore.body.type)
  })

  it("Create a Payment Session answers the same shape as core", async () => {
    const forCore = await createPaymentCollection({ regionId: region.id, amount: 1000 })
    const forPlugin = await createPaymentCollection({ regionId: region.id, amount: 1000 })

    const fromCore = await coreApi.post(`/store/payment-collections/${forCore.id}/sessions`, { provider_id: "manual" })
    const fromPlugin = await api.post(`/store/payment-collections/${forPlugin.id}/sessions`, { provider_id: "manual" })

    expect(fromCore.status).toBe(200)
    expect(fromPlugin.status).toBe(200)
    expect(shape(fromPlugin.body)).toEqual(shape(fromCore.body))
    const pc = withoutVolatile(fromPlugin.body.payment_collection)
    const cc = withoutVolatile(fromCore.body.payment_collection)
    expect(pc.region).toEqual(cc.region)
    expect(pc.payment_sessions[0].data).toEqual(cc.payment_sessions[0].data)
  })

  it("Manage Payment Sessions answers the same shape as core", async () => {
    const forCore = await createPaymentCollection({ regionId: region.id, amount: 1000 })
    const forPlugin = await createPaymentCollection({ regionId: region.id, amount: 1000 })
    const body = { sessions: [{ provider_id: "manual", amount: 1000 }] }

    const fromCore = await coreApi.post(`/store/payment-collections/${forCore.id}/sessions/batch`, body)
    const fromPlugin = await api.post(`/store/payment-collections/${forPlugin.id}/sessions/batch`, body)

    expect(fromCore.status).toBe(200)
    expect(fromPlugin.status).toBe(200)
    expect(shape(fromPlugin.body)).toEqual(shape(fromCore.body))
  })

  it("authorizing answers the same shapes as core (batch: collection with payments; single: the session)", async () => {
    const shapes: Record<string, unknown[]> = { batch: [], single: [] }
    for (const [target, client] of [["core", coreApi], ["plugin", api]] as const) {
      const collection = await createPaymentCollection({ regionId: region.id, amount: 1000 })
      const created = await api.post(`/store/payment-collections/${collection.id}/sessions`, { provider_id: "manual" })
      const sessionId = created.body.payment_collection.payment_sessions[0].id
      const batch = await client.post(`/store/payment-collections/${collection.id}/sessions/batch/authorize`, {
        session_ids: [sessionId],
      })
      expect({ target, status: batch.status }).toEqual({ target, status: 200 })
      expect(batch.body.payment_collection.status).toBe("authorized")
      shapes.batch.push(shape(batch.body))

      const other = await createPaymentCollection({ regionId: region.id, amount: 1000 })
      const otherCreated = await api.post(`/store/payment-collections/${other.id}/sessions`, { provider_id: "manual" })
      const otherSessionId = otherCreated.body.payment_collection.payment_sessions[0].id
      const single = await client.post(`/store/payment-collections/${other.id}/sessions/${otherSessionId}/authorize`)
      expect({ target, status: single.status }).toEqual({ target, status: 200 })
      shapes.single.push(shape(single.body))
    }
    expect(shapes.batch[1]).toEqual(shapes.batch[0])
    expect(shapes.single[1]).toEqual(shapes.single[0])
  })
})
