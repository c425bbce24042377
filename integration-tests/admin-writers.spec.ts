import { ExtraBackend, startExtraBackend, stopExtraBackends } from "./helpers/backend"
import { Api, HttpResponse, adminHeaders, createApi } from "./helpers/http"
import { createPaymentCollection, createRegion, db, freeCountry } from "./helpers/factories"
import { psp } from "./helpers/fake-psp"
import { orphanSessionsOf } from "./helpers/collection-state"
import { testEnv } from "./helpers/env"
import { Shop, orderEditSeed } from "./helpers/order-edit-seed"
import {
  base,
  collectionRow,
  describeAnswer,
  linkedPayments,
  linkedSessions,
  retryWhileBusy,
  waitFor,
} from "./helpers/payments"

// Core's admin writers of a payment collection — POST /admin/payment-collections/:id/authorize
// (markAsAuthorized) and DELETE /admin/payment-collections/:id — served by the plugin under the
// collection's lock, racing the store's requests on two backend processes (only PostgreSQL's row
// lock serializes them). Core reads and writes these rows without any lock: its delete removes a
// collection a store request is filling or authorizing (its sessions, payments and the provider's
// intents are left behind), and a late authorization adopted after an admin's `authorized`
// recomputed the status from the sessions, down to `partially_authorized`, after which core's
// complete-order-edit refuses the edit. Core's contract (status codes and bodies) is compared with
// a backend without the plugin on the same database.

const OPTIONS = { provider_timeout_ms: 1500, lock_timeout_ms: 1500, reconcile_interval_ms: 500, finder_settle_ms: 1000 }
const PLUGIN_HEADER = "x-payment-collections-plugin"
const SERVED_BY = /^medusa-plugin-payment-collections@/

const adminPath = (id: string) => `/admin/payment-collections/${id}`

/** The answer without what differs between two collections (ids, times). */
function comparable(body: any): unknown {
  return JSON.parse(JSON.stringify(body), (key, value) =>
    ["id", "created_at", "updated_at", "region_id"].includes(key) ? typeof value : value
  )
}

describe("core's admin writers of a payment collection, under the collection's lock", () => {
  let backends: ExtraBackend[] = []
  /** Store API of backend 0 and 1 */
  let store: Api[] = []
  /** Admin API of backend 0 and 1 */
  let admin: Api[] = []
  /** A backend without the plugin: core's own routes */
  let core: { store: Api; admin: Api }
  let region: any
  let shop: Shop
  const timings: Record<string, Record<string, number>> = {}

  beforeAll(async () => {
    const env = { PAYMENT_COLLECTIONS_OPTIONS: JSON.stringify(OPTIONS) }
    const [a, b, coreOnly] = await Promise.all([
      startExtraBackend({ env }),
      startExtraBackend({ env }),
      startExtraBackend({ env: { HOST_WITHOUT_PLUGIN: "1" } }),
    ])
    backends = [a, b]
    store = backends.map((backend) => createApi(backend.url))
    admin = backends.map((backend) => createApi(backend.url, adminHeaders()))
    core = { store: createApi(coreOnly.url), admin: createApi(coreOnly.url, adminHeaders()) }
    region = await createRegion({ providers: ["manual", "test-pay", "test-fields"] })
    shop = await orderEditSeed.createShop(testEnv().backendUrl, { adminHeaders: adminHeaders(), countryCode: await freeCountry() })
  }, 240_000)

  beforeEach(() => psp.reset())

  afterAll(async () => {
    await psp.reset()
    await stopExtraBackends()
    await db.end()
    console.log(`admin writers: ms from the first request: ${JSON.stringify(timings)}`)
  }, 60_000)

  /** An order edit adding one mug (2000 due), requested: core created its payment collection. */
  async function requestedEdit() {
    const url = testEnv().backendUrl
    const order = await orderEditSeed.placeOrder(url, shop)
    const edit = await orderEditSeed.requestOrderEdit(url, shop, order.id, { adminHeaders: adminHeaders(), quantity: 1 })
    return { order, edit, collection: await collectionRow(edit.payment_collection_id) }
  }

  async function batch(on: Api, collectionId: string, sessions: { provider_id: string; amount: number }[]) {
    const res = await on.post(`${base(collectionId)}/sessions/batch`, { sessions })
    expect(describeAnswer(res)).toBe("200")
    return res.body.payment_collection.payment_sessions as any[]
  }

  /** The intents the PSP still holds for the collection equal those its database rows name. */
  async function expectProviderMatchesDatabase(collectionId: string) {
    const named = (await linkedSessions(collectionId)).map((s) => s.data.id).filter(Boolean)
    const live = (await psp.liveIntents(collectionId)).map((i) => i.id)
    expect(live.sort()).toEqual(named.sort())
  }

  describe("POST /admin/payment-collections/:id/authorize racing a late store authorization", () => {
    it(
      "the store's authorize answers 504, the admin marks the collection authorized, the provider's late answer is " +
        "adopted afterwards: the collection stays authorized for its whole amount and the order edit completes",
      async () => {
        const { order, edit, collection } = await requestedEdit()
        expect(collection).toMatchObject({ status: "not_paid", amount: 2000 })
        const sessions = await batch(store[0], collection.id, [
          { provider_id: "test-pay", amount: 1200 },
          { provider_id: "manual", amount: 800 },
        ])
        const card = sessions.find((s) => s.provider_id === "test-pay")
        // The provider reads the intent only when it answers, 6 s after the call: by then the shopper has confirmed.
        await psp.behaviour({ authorizePayment: { delayMs: 6000, times: 1 } })
        const t0 = Date.now()
        const at = () => Date.now() - t0

        const storeAuthorize = await store[0].post(`${base(collection.id)}/sessions/${card.id}/authorize`)
        const storeAnswered = at()
        // Meanwhile, on the other backend, an admin takes the payment another way.
        const marked = await retryWhileBusy(() => admin[1].post(`${adminPath(collection.id)}/authorize`))
        const adminAnswered = at()
        await psp.confirmSession(card)
        const confirmed = at()
        await waitFor(
          "the late authorization to be recorded",
          async () => (await linkedSessions(collection.id)).find((s) => s.id === card.id)?.status === "authorized",
          { timeoutMs: 20_000 }
        )
        const adopted = at()
        timings["admin authorize vs late authorization"] = { storeAnswered, adminAnswered, confirmed, adopted }

        expect({ status: storeAuthorize.status, code: storeAuthorize.body.code }).toEqual({
          status: 504,
          code: "payment_provider_timeout",
        })
        expect(marked.status).toBe(200)
        expect(marked.body.payment_collection).toMatchObject({ id: collection.id, status: "authorized", authorized_amount: 2000 })
        // The shopper confirmed after the admin's answer, so the authorization recorded came afterwards.
        expect(confirmed).toBeLessThan(6000)
        const calls = await waitFor("the provider to answer the store's authorize", async () => {
          const history = await psp.history({ method: "authorizePayment" })
          return history.every((call) => call.outcome !== "in_flight") ? history : undefined
        })
        expect(calls?.map((call) => call.outcome)).toEqual(["ok"])
        expect(await linkedPayments(collection.id)).toEqual([
          expect.objectContaining({ provider_id: "test-pay", amount: 1200 }),
        ])
        expect(await collectionRow(collection.id)).toMatchObject({ status: "authorized", authorized_amount: 2000 })

        const completed = await store[1].post(`/store/order-edits/${edit.id}/complete`)
        expect(describeAnswer(completed)).toBe("200")
        expect(completed.body.order_edit).toMatchObject({ id: edit.id, status: "confirmed" })
        expect((await linkedPayments(collection.id)).map((p) => p.order_id)).toEqual([order.id])
        expect(await collectionRow(collection.id)).toMatchObject({ status: "authorized", authorized_amount: 2000 })
        // The plugin served the admin's write (core's route would not have taken the collection's lock).
        expect(marked.headers[PLUGIN_HEADER]).toMatch(SERVED_BY)
      },
      60_000
    )

    it("an authorization adopted after the edit was completed on the admin's mark belongs to the order", async () => {
      const { order, edit, collection } = await requestedEdit()
      const sessions = await batch(store[0], collection.id, [
        { provider_id: "test-pay", amount: 1200 },
        { provider_id: "manual", amount: 800 },
      ])
      const card = sessions.find((s) => s.provider_id === "test-pay")
      await psp.behaviour({ authorizePayment: { delayMs: 6000, times: 1 } })

      const storeAuthorize = await store[0].post(`${base(collection.id)}/sessions/${card.id}/authorize`)
      expect(storeAuthorize.status).toBe(504)
      const marked = await retryWhileBusy(() => admin[1].post(`${adminPath(collection.id)}/authorize`))
      expect(marked.status).toBe(200)
      // Completed on the admin's mark, before the provider's late answer: no payment to link yet.
      const completed = await store[1].post(`/store/order-edits/${edit.id}/complete`)
      expect(describeAnswer(completed)).toBe("200")
      expect(await linkedPayments(collection.id)).toEqual([])
      await psp.confirmSession(card)

      await waitFor(
        "the late authorization to be recorded",
        async () => (await linkedSessions(collection.id)).find((s) => s.id === card.id)?.status === "authorized",
        { timeoutMs: 20_000 }
      )
      expect(await linkedPayments(collection.id)).toEqual([
        expect.objectContaining({ provider_id: "test-pay", amount: 1200, order_id: order.id }),
      ])
      expect(await collectionRow(collection.id)).toMatchObject({ status: "authorized", authorized_amount: 2000 })
    }, 60_000)

    it("an admin's authorize while a store authorization is mid-call waits for it, and the answer is the admin's", async () => {
      const collection = await createPaymentCollection({ regionId: region.id, amount: 1000 })
      const [card] = await batch(store[0], collection.id, [
        { provider_id: "test-pay", amount: 600 },
        { provider_id: "manual", amount: 400 },
      ]).then((s) => s.filter((x) => x.provider_id === "test-pay"))
      await psp.confirmSession(card)
      await psp.behaviour({ authorizePayment: { delayMs: 800, times: 1 } })
      const t0 = Date.now()

      const storeAuthorize = store[0].post(`${base(collection.id)}/sessions/${card.id}/authorize`)
      await waitFor("the store's authorize to reach the provider", async () => (await psp.state()).inflight.authorizePayment === 1)
      const marked = await retryWhileBusy(() => admin[1].post(`${adminPath(collection.id)}/authorize`))
      const adminAnswered = Date.now() - t0
      const authorized = await storeAuthorize
      timings["admin authorize during a store authorization"] = { adminAnswered }

      expect(describeAnswer(authorized)).toBe("200")
      expect(authorized.body.payment_session).toMatchObject({ id: card.id, status: "authorized" })
      expect(describeAnswer(marked)).toBe("200")
      expect(marked.body.payment_collection).toMatchObject({ status: "authorized", authorized_amount: 1000 })
      // The admin's write waited for the store's transaction (its answer came after the provider's 800 ms).
      expect(adminAnswered).toBeGreaterThanOrEqual(800)
      expect(await collectionRow(collection.id)).toMatchObject({ status: "authorized", authorized_amount: 1000 })
      expect(await linkedPayments(collection.id)).toEqual([expect.objectContaining({ provider_id: "test-pay", amount: 600 })])
    })
  })

  describe("DELETE /admin/payment-collections/:id racing the store", () => {
    it(
      "a delete sent while a batch is mid-way waits for the lock: the batch commits, the delete follows and deletes " +
        "the sessions at the provider — no session left at the provider or in the database",
      async () => {
        const collection = await createPaymentCollection({ regionId: region.id, amount: 1000 })
        // Two initiates of 500 ms each hold the batch (and the collection's lock) for a second.
        await psp.behaviour({ initiatePayment: { delayMs: 500 } })
        const t0 = Date.now()
        const at = () => Date.now() - t0

        const batchPending = store[0]
          .post(`${base(collection.id)}/sessions/batch`, {
            sessions: [
              { provider_id: "test-pay", amount: 600 },
              { provider_id: "test-fields", amount: 400 },
            ],
          })
          .then((res) => ({ res, at: at() }))
        await waitFor("the batch's first initiate to be in flight", async () => (await psp.state()).inflight.initiatePayment === 1)
        const deleteSent = at()
        const deleted = await admin[1].delete(adminPath(collection.id)).then((res) => ({ res, at: at() }))
        const batched = await batchPending
        timings["delete during a batch"] = { deleteSent, batchAnswered: batched.at, deleteAnswered: deleted.at }

        expect(describeAnswer(batched.res)).toBe("200")
        const created = batched.res.body.payment_collection.payment_sessions as any[]
        expect(created).toHaveLength(2)
        expect(deleted.res.status).toBe(200)
        expect(deleted.res.body).toEqual({ id: collection.id, deleted: true, object: "payment_collection" })
        expect(deleted.at).toBeGreaterThanOrEqual(batched.at)

        expect(await collectionRow(collection.id)).toBeUndefined()
        const { rows: left } = await db.query(`SELECT id FROM payment_session WHERE id = ANY($1)`, [created.map((s) => s.id)])
        expect(left).toEqual([])
        expect(await orphanSessionsOf(collection.id)).toEqual([])
        const intents = await psp.intents({ resourceId: collection.id })
        expect(intents.map((i) => i.status)).toEqual(["canceled", "canceled"])
        expect(await psp.liveIntents(collection.id)).toEqual([])
        expect(deleted.res.headers[PLUGIN_HEADER]).toMatch(SERVED_BY)
      },
      30_000
    )

    it(
      "a delete sent while a batch authorization is mid-way waits for it, then refuses by the status it finds " +
        "(authorized): the collection, its sessions, its payment and the provider's hold stay",
      async () => {
        const collection = await createPaymentCollection({ regionId: region.id, amount: 1000 })
        const [card] = await batch(store[0], collection.id, [{ provider_id: "test-pay", amount: 1000 }])
        await psp.confirmSession(card)
        await psp.behaviour({ authorizePayment: { delayMs: 800, times: 1 } })
        const t0 = Date.now()

        const authorizing = store[0].post(`${base(collection.id)}/sessions/batch/authorize`, { session_ids: [card.id] })
        await waitFor("the authorize to be in flight", async () => (await psp.state()).inflight.authorizePayment === 1)
        const refused = await retryWhileBusy(() => admin[1].delete(adminPath(collection.id)))
        const deleteAnswered = Date.now() - t0
        const authorized = await authorizing
        timings["delete during an authorization"] = { deleteAnswered }

        expect(describeAnswer(authorized)).toBe("200")
        expect({ status: refused.status, body: refused.body }).toEqual({
          status: 400,
          body: expect.objectContaining({ type: "not_allowed", message: "Cannot delete payment collection with status authorized" }),
        })
        expect(await collectionRow(collection.id)).toMatchObject({ status: "authorized", authorized_amount: 1000 })
        expect((await linkedSessions(collection.id)).map((s) => s.id)).toEqual([card.id])
        expect(await linkedPayments(collection.id)).toEqual([expect.objectContaining({ provider_id: "test-pay", amount: 1000 })])
        expect((await psp.liveIntents(collection.id)).map((i) => i.status)).toEqual(["authorized"])
        await expectProviderMatchesDatabase(collection.id)
        expect(refused.headers[PLUGIN_HEADER]).toMatch(SERVED_BY)
      }
    )

    it("a collection whose session the shopper confirmed at the provider is not deleted: the authorization is recorded, 400", async () => {
      const collection = await createPaymentCollection({ regionId: region.id, amount: 1000 })
      const [card] = await batch(store[0], collection.id, [{ provider_id: "test-pay", amount: 1000 }])
      await psp.confirmSession(card)

      const refused = await admin[1].delete(adminPath(collection.id))

      expect({ status: refused.status, type: refused.body.type }).toEqual({ status: 400, type: "not_allowed" })
      expect(refused.body.message).toContain(card.id)
      expect(await collectionRow(collection.id)).toMatchObject({ status: "authorized", authorized_amount: 1000 })
      expect(await linkedPayments(collection.id)).toEqual([expect.objectContaining({ provider_id: "test-pay", amount: 1000 })])
      await expectProviderMatchesDatabase(collection.id)
    })
  })

  describe("core's contract, answer for answer (a backend without the plugin on the same database)", () => {
    /** Sends the same admin request to core and to the plugin, each on a collection of its own. */
    async function both(request: (on: Api, collectionId: string) => Promise<HttpResponse>, setUp: () => Promise<string>) {
      const [forCore, forPlugin] = [await setUp(), await setUp()]
      const fromCore = await request(core.admin, forCore)
      const fromPlugin = await request(admin[0], forPlugin)
      expect(fromCore.headers[PLUGIN_HEADER]).toBeUndefined()
      expect(fromPlugin.headers[PLUGIN_HEADER]).toMatch(SERVED_BY)
      return { fromCore, fromPlugin, forCore, forPlugin }
    }
    const notPaid = async () => (await createPaymentCollection({ regionId: region.id, amount: 1500, description: "d" })).id

    it("authorize a not_paid collection: 200, the collection's columns in core's order, authorized for its amount", async () => {
      const { fromCore, fromPlugin, forPlugin } = await both((on, id) => on.post(`${adminPath(id)}/authorize`), notPaid)

      expect(fromPlugin.status).toBe(fromCore.status)
      expect(fromPlugin.status).toBe(200)
      expect(Object.keys(fromPlugin.body.payment_collection)).toEqual(Object.keys(fromCore.body.payment_collection))
      expect(comparable(fromPlugin.body)).toEqual(comparable(fromCore.body))
      expect(fromPlugin.body.payment_collection).toMatchObject({ id: forPlugin, status: "authorized", authorized_amount: 1500 })
      expect(await collectionRow(forPlugin)).toMatchObject({ status: "authorized", authorized_amount: 1500 })
    })

    it("authorize a canceled collection: core revives it, and so does the plugin", async () => {
      const canceled = async () => (await createPaymentCollection({ regionId: region.id, amount: 700, status: "canceled" })).id
      const { fromCore, fromPlugin } = await both((on, id) => on.post(`${adminPath(id)}/authorize`), canceled)

      expect(comparable(fromPlugin.body)).toEqual(comparable(fromCore.body))
      expect(fromPlugin.body.payment_collection).toMatchObject({ status: "authorized", authorized_amount: 700 })
    })

    it("authorize a collection that does not exist: the same 404", async () => {
      const fromCore = await core.admin.post(`${adminPath("paycol_missing")}/authorize`)
      const fromPlugin = await admin[0].post(`${adminPath("paycol_missing")}/authorize`)

      expect({ status: fromPlugin.status, body: fromPlugin.body }).toEqual({ status: fromCore.status, body: fromCore.body })
      expect(fromPlugin.status).toBe(404)
      expect(fromPlugin.body).toEqual({ type: "not_found", message: "Payment collection with id paycol_missing was not found" })
    })

    it("delete a not_paid collection: 200 { id, deleted, object }, the row gone", async () => {
      const { fromCore, fromPlugin, forCore, forPlugin } = await both((on, id) => on.delete(adminPath(id)), notPaid)

      expect(fromCore.body).toEqual({ id: forCore, deleted: true, object: "payment_collection" })
      expect(fromPlugin.status).toBe(fromCore.status)
      expect(fromPlugin.body).toEqual({ id: forPlugin, deleted: true, object: "payment_collection" })
      expect(await collectionRow(forCore)).toBeUndefined()
      expect(await collectionRow(forPlugin)).toBeUndefined()
    })

    it("delete a collection that does not exist: 200, as if deleted", async () => {
      const fromCore = await core.admin.delete(adminPath("paycol_missing"))
      const fromPlugin = await admin[0].delete(adminPath("paycol_missing"))

      expect({ status: fromPlugin.status, body: fromPlugin.body }).toEqual({ status: fromCore.status, body: fromCore.body })
      expect(fromPlugin.body).toEqual({ id: "paycol_missing", deleted: true, object: "payment_collection" })
    })

    it("delete an authorized collection: the same 400 not_allowed, nothing deleted", async () => {
      const authorized = async () => (await createPaymentCollection({ regionId: region.id, amount: 900, status: "authorized" })).id
      const { fromCore, fromPlugin, forCore, forPlugin } = await both((on, id) => on.delete(adminPath(id)), authorized)

      expect({ status: fromPlugin.status, body: fromPlugin.body }).toEqual({ status: fromCore.status, body: fromCore.body })
      expect(fromPlugin.body).toEqual({ type: "not_allowed", message: "Cannot delete payment collection with status authorized" })
      expect(await collectionRow(forCore)).toBeDefined()
      expect(await collectionRow(forPlugin)).toBeDefined()
    })

    it("delete the collection an order edit pays: the plugin 400 not_allowed (core: 404 \"null\" from the foreign key)", async () => {
      const { fromCore, fromPlugin, forCore, forPlugin } = await both(
        (on, id) => on.delete(adminPath(id)),
        async () => (await requestedEdit()).collection.id
      )

      expect({ status: fromCore.status, body: fromCore.body }).toEqual({ status: 404, body: { type: "not_found", message: "null" } })
      expect(fromPlugin.status).toBe(400)
      expect(fromPlugin.body.type).toBe("not_allowed")
      expect(fromPlugin.body.message).toContain(forPlugin)
      expect(fromPlugin.body.message).toMatch(/order edit oe_\w+/)
      expect(await collectionRow(forCore)).toMatchObject({ status: "not_paid" })
      expect(await collectionRow(forPlugin)).toMatchObject({ status: "not_paid" })
    })

    it("without an admin: 401 from both, nothing written", async () => {
      for (const [name, on] of [["core", core.store], ["plugin", store[0]]] as const) {
        const id = await notPaid()
        const authorized = await on.post(`${adminPath(id)}/authorize`)
        const deleted = await on.delete(adminPath(id))
        expect({ name, authorize: authorized.status, delete: deleted.status }).toEqual({ name, authorize: 401, delete: 401 })
        expect(await collectionRow(id)).toMatchObject({ status: "not_paid" })
      }
    })
  })
})
