import { adminApi, api, HttpResponse } from "./helpers/http"
import { createRegion, db } from "./helpers/factories"
import { psp } from "./helpers/fake-psp"
import { waitForEvents } from "./helpers/events"

const PLUGIN_HEADER = "x-payment-collections-plugin"

// The storefront's whole journey for an order edit that costs more: a real order is
// placed through the store API (cart, shipping method of the fixture fulfillment
// provider "test-ship", manual payment), an admin edits it, core creates the
// order_edit payment collection, the shopper pays it through the plugin's
// endpoints and completes the edit with core's store route.

function ok<T = any>(what: string, res: HttpResponse<T>): T {
  if (res.status < 200 || res.status >= 300) {
    throw new Error(`${what} answered ${res.status}: ${res.text}`)
  }
  return res.body
}

async function freeCountry(): Promise<string> {
  const { rows } = await db.query(`SELECT iso_2 FROM country WHERE region_id IS NULL ORDER BY iso_2 LIMIT 1`)
  if (!rows.length) throw new Error("no country left without a region")
  return rows[0].iso_2
}

describe("order edit paid through the plugin's Payment Collections endpoints", () => {
  let region: any
  let country: string
  let shippingOptionId: string
  let variantId: string

  beforeAll(async () => {
    country = await freeCountry()
    region = await createRegion({ providers: ["manual", "test-pay"], countries: [country] })
    ok(
      "POST /admin/regions/:id/fulfillment-providers",
      await adminApi.post(`/admin/regions/${region.id}/fulfillment-providers`, { provider_id: "test-ship" })
    )
    shippingOptionId = ok(
      "POST /admin/shipping-options",
      await adminApi.post("/admin/shipping-options", {
        name: "Standard",
        region_id: region.id,
        provider_id: "test-ship",
        data: { id: "test-ship" },
        price_type: "flat_rate",
        amount: 500,
      })
    ).shipping_option.id
    variantId = ok(
      "POST /admin/products",
      await adminApi.post("/admin/products", {
        title: `Mug ${Date.now()}`,
        status: "published",
        options: [{ title: "Size" }],
        variants: [
          {
            title: "One size",
            manage_inventory: false,
            prices: [{ currency_code: "usd", amount: 2000 }],
            options: [{ value: "One size" }],
          },
        ],
      })
    ).product.variants[0].id
  })

  beforeEach(() => psp.reset())

  afterAll(() => db.end())

  /** Checks out one mug (2000) + shipping (500) with the manual provider; returns the order. */
  async function placeOrder(): Promise<any> {
    const cartId = ok("POST /store/carts", await api.post("/store/carts", { region_id: region.id })).cart.id
    ok(
      "POST /store/carts/:id/line-items",
      await api.post(`/store/carts/${cartId}/line-items`, { variant_id: variantId, quantity: 1 })
    )
    ok(
      "POST /store/carts/:id",
      await api.post(`/store/carts/${cartId}`, {
        email: "shopper@example.com",
        shipping_address: {
          first_name: "Sam",
          last_name: "Shopper",
          address_1: "1 Main Street",
          city: "Springfield",
          postal_code: "12345",
          country_code: country,
        },
      })
    )
    const options = ok("GET /store/shipping-options/:cart_id", await api.get(`/store/shipping-options/${cartId}`))
    expect(options.shipping_options.map((o: any) => o.id)).toContain(shippingOptionId)
    ok(
      "POST /store/carts/:id/shipping-methods",
      await api.post(`/store/carts/${cartId}/shipping-methods`, { option_id: shippingOptionId })
    )
    ok("POST /store/carts/:id/payment-sessions", await api.post(`/store/carts/${cartId}/payment-sessions`))
    ok(
      "POST /store/carts/:id/payment-session",
      await api.post(`/store/carts/${cartId}/payment-session`, { provider_id: "manual" })
    )
    const completed = ok("POST /store/carts/:id/complete", await api.post(`/store/carts/${cartId}/complete`))
    expect(completed.type).toBe("order")
    expect(completed.data).toMatchObject({ total: 2500, payment_status: "awaiting", region_id: region.id })
    return completed.data
  }

  /** As admin: adds two more mugs to the order and requests the shopper's confirmation. */
  async function requestEditAddingTwoMugs(orderId: string): Promise<any> {
    const edit = ok("POST /admin/order-edits", await adminApi.post("/admin/order-edits", { order_id: orderId })).order_edit
    ok(
      "POST /admin/order-edits/:id/items",
      await adminApi.post(`/admin/order-edits/${edit.id}/items`, { variant_id: variantId, quantity: 2 })
    )
    const requested = ok(
      "POST /admin/order-edits/:id/request",
      await adminApi.post(`/admin/order-edits/${edit.id}/request`, { payment_collection_description: "Two more mugs" })
    ).order_edit
    expect(requested).toMatchObject({ status: "requested", difference_due: 4000 })
    expect(requested.payment_collection_id).toMatch(/^paycol_/)
    return requested
  }

  async function paymentsOf(collectionId: string) {
    const { rows } = await db.query(
      `SELECT p.id, p.amount, p.provider_id, p.order_id FROM payment p
         JOIN payment_collection_payments pcp ON pcp.payment_id = p.id
        WHERE pcp.payment_collection_id = $1 ORDER BY p.amount`,
      [collectionId]
    )
    return rows
  }

  it("the shopper pays the edit with the manual provider, completes it, and the payment is attached to the order", async () => {
    const order = await placeOrder()
    const requested = await requestEditAddingTwoMugs(order.id)

    // Core created the order_edit payment collection for the difference.
    const { rows: collections } = await db.query(`SELECT * FROM payment_collection WHERE id = $1`, [
      requested.payment_collection_id,
    ])
    expect(collections[0]).toMatchObject({
      type: "order_edit",
      status: "not_paid",
      amount: 4000,
      region_id: region.id,
      currency_code: "usd",
      description: "Two more mugs",
    })

    // The storefront reads the edit, then its payment collection.
    const storeEdit = ok("GET /store/order-edits/:id", await api.get(`/store/order-edits/${requested.id}`)).order_edit
    expect(storeEdit.payment_collection_id).toBe(requested.payment_collection_id)
    const collectionId: string = storeEdit.payment_collection_id
    const got = await api.get(`/store/payment-collections/${collectionId}`)
    expect(got.status).toBe(200)
    expect(got.headers[PLUGIN_HEADER]).toBeDefined()
    expect(got.body.payment_collection).toMatchObject({ id: collectionId, amount: 4000, status: "not_paid" })

    // Completing before paying is refused by core.
    const tooEarly = await api.post(`/store/order-edits/${requested.id}/complete`)
    expect(tooEarly.status).toBe(400)
    expect(tooEarly.body.type).toBe("not_allowed")

    const session = await api.post(`/store/payment-collections/${collectionId}/sessions`, { provider_id: "manual" })
    expect(session.status).toBe(200)
    expect(session.headers[PLUGIN_HEADER]).toBeDefined()
    const sessionId = session.body.payment_collection.payment_sessions[0].id
    const authorized = await api.post(`/store/payment-collections/${collectionId}/sessions/${sessionId}/authorize`)
    expect(authorized.status).toBe(200)
    expect(authorized.body.payment_session).toMatchObject({ id: sessionId, status: "authorized", amount: 4000 })

    const completed = await api.post(`/store/order-edits/${requested.id}/complete`)

    expect(completed.status).toBe(200)
    expect(completed.body.order_edit).toMatchObject({ id: requested.id, status: "confirmed" })
    expect(await paymentsOf(collectionId)).toEqual([
      expect.objectContaining({ amount: 4000, provider_id: "manual", order_id: order.id }),
    ])
    const { rows: collectionAfter } = await db.query(
      `SELECT status, authorized_amount FROM payment_collection WHERE id = $1`,
      [collectionId]
    )
    expect(collectionAfter[0]).toEqual({ status: "authorized", authorized_amount: 4000 })

    const adminOrder = ok("GET /admin/orders/:id", await adminApi.get(`/admin/orders/${order.id}`)).order
    expect(adminOrder.payments.map((p: any) => p.amount).sort((a: number, b: number) => a - b)).toEqual([2500, 4000])
    const mugs = adminOrder.items
      .filter((i: any) => i.variant_id === variantId)
      .reduce((sum: number, i: any) => sum + i.quantity, 0)
    expect(mugs).toBe(3)

    const confirmed = await waitForEvents("order-edit.confirmed", (all) => all.some((e) => e.data?.id === requested.id))
    expect(confirmed.filter((e) => e.data?.id === requested.id)).toHaveLength(1)
  })

  it("a payment split over manual and test-pay, with a refused first try, ends attached to the order", async () => {
    const order = await placeOrder()
    const requested = await requestEditAddingTwoMugs(order.id)
    const collectionId: string = requested.payment_collection_id

    const batch = await api.post(`/store/payment-collections/${collectionId}/sessions/batch`, {
      sessions: [
        { provider_id: "manual", amount: 1500 },
        { provider_id: "test-pay", amount: 2500 },
      ],
    })
    expect(batch.status).toBe(200)
    const ids = batch.body.payment_collection.payment_sessions.map((s: any) => s.id)
    await psp.confirmSession(batch.body.payment_collection.payment_sessions.find((s: any) => s.provider_id === "test-pay"))

    await psp.behaviour({ authorizePayment: { fail: "refuse", times: 1 } })
    const refused = await api.post(`/store/payment-collections/${collectionId}/sessions/batch/authorize`, {
      session_ids: ids,
    })
    expect(refused.status).toBe(422)
    expect(refused.body.type).toBe("payment_authorization_error")
    const notYet = await api.post(`/store/order-edits/${requested.id}/complete`)
    expect(notYet.status).toBe(400)
    expect(notYet.body.type).toBe("not_allowed")

    const retried = await api.post(`/store/payment-collections/${collectionId}/sessions/batch/authorize`, {
      session_ids: ids,
    })
    expect(retried.status).toBe(200)
    expect(retried.body.payment_collection).toMatchObject({ status: "authorized", authorized_amount: 4000 })

    const completed = await api.post(`/store/order-edits/${requested.id}/complete`)

    expect(completed.status).toBe(200)
    expect(completed.body.order_edit.status).toBe("confirmed")
    expect(await paymentsOf(collectionId)).toEqual([
      expect.objectContaining({ amount: 1500, provider_id: "manual", order_id: order.id }),
      expect.objectContaining({ amount: 2500, provider_id: "test-pay", order_id: order.id }),
    ])
    expect((await psp.state()).intents).toEqual([expect.objectContaining({ amount: 2500, status: "authorized" })])
  })
})
