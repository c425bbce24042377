"use strict"

// An order with an order edit whose payment collection is paid through two
// providers, made the way a shop makes one: an admin sets up a region and a
// product, a shopper checks out through the store API, an admin edits the order
// and requests the difference, the shopper pays it through the plugin's
// endpoints and confirms the edit. Used by `npm start` (the demo) and by the
// admin dashboard spec; needs the fixture providers "test-pay" (payments) and
// "test-ship" (fulfillment) next to "manual".

const crypto = require("crypto")
const { expectOk } = require("./http-json")

const MUG_PRICE = 2000
const SHIPPING_PRICE = 500

/**
 * As admin: a region offering manual and test-pay in `countryCode`, a flat-rate
 * test-ship shipping option and a published one-variant product.
 */
async function createShop(url, { adminHeaders, countryCode, currency = "usd", name }) {
  const suffix = crypto.randomBytes(3).toString("hex")
  const admin = (method, path, body) =>
    expectOk(`${method} ${path}`, method, url + path, { body, headers: adminHeaders })
  const region = (
    await admin("POST", "/admin/regions", {
      name: name || `Payment collections region ${suffix}`,
      currency_code: currency,
      tax_rate: 0,
      payment_providers: ["manual", "test-pay"],
      fulfillment_providers: ["test-ship"],
      countries: [countryCode],
    })
  ).body.region
  const shippingOption = (
    await admin("POST", "/admin/shipping-options", {
      name: "Standard shipping",
      region_id: region.id,
      provider_id: "test-ship",
      data: { id: "test-ship" },
      price_type: "flat_rate",
      amount: SHIPPING_PRICE,
    })
  ).body.shipping_option
  const product = (
    await admin("POST", "/admin/products", {
      title: `Mug ${suffix}`,
      status: "published",
      options: [{ title: "Size" }],
      variants: [
        {
          title: "One size",
          manage_inventory: false,
          prices: [{ currency_code: currency, amount: MUG_PRICE }],
          options: [{ value: "One size" }],
        },
      ],
    })
  ).body.product
  return {
    regionId: region.id,
    countryCode,
    shippingOptionId: shippingOption.id,
    variantId: product.variants[0].id,
  }
}

/** As a shopper: checks out one mug plus shipping with the manual provider; returns the order. */
async function placeOrder(url, shop, { email = "shopper@example.com" } = {}) {
  const store = (method, path, body) => expectOk(`${method} ${path}`, method, url + path, { body })
  const cart = (await store("POST", "/store/carts", { region_id: shop.regionId })).body.cart
  await store("POST", `/store/carts/${cart.id}/line-items`, { variant_id: shop.variantId, quantity: 1 })
  await store("POST", `/store/carts/${cart.id}`, {
    email,
    shipping_address: {
      first_name: "Sam",
      last_name: "Shopper",
      address_1: "1 Main Street",
      city: "Springfield",
      postal_code: "12345",
      country_code: shop.countryCode,
    },
  })
  await store("POST", `/store/carts/${cart.id}/shipping-methods`, { option_id: shop.shippingOptionId })
  await store("POST", `/store/carts/${cart.id}/payment-sessions`)
  await store("POST", `/store/carts/${cart.id}/payment-session`, { provider_id: "manual" })
  const completed = (await store("POST", `/store/carts/${cart.id}/complete`)).body
  if (completed.type !== "order") {
    throw new Error(`checkout did not make an order: ${JSON.stringify(completed).slice(0, 500)}`)
  }
  return completed.data
}

/**
 * As admin: edits the order to add `quantity` mugs and requests the shopper's
 * confirmation; core then creates the edit's payment collection.
 */
async function requestOrderEdit(url, shop, orderId, { adminHeaders, quantity = 2, description }) {
  const admin = (method, path, body) =>
    expectOk(`${method} ${path}`, method, url + path, { body, headers: adminHeaders })
  const edit = (await admin("POST", "/admin/order-edits", { order_id: orderId })).body.order_edit
  await admin("POST", `/admin/order-edits/${edit.id}/items`, { variant_id: shop.variantId, quantity })
  const requested = (
    await admin("POST", `/admin/order-edits/${edit.id}/request`, {
      payment_collection_description: description || `${quantity} more mugs`,
    })
  ).body.order_edit
  if (!requested.payment_collection_id) {
    throw new Error(`order edit ${edit.id} was requested without a payment collection`)
  }
  return requested
}

/**
 * As a shopper: pays a collection through the plugin's store endpoints, split
 * over providers (`[{ provider_id, amount }]`), and authorizes every session.
 * The one place that knows how a payment is made at each provider.
 */
async function payCollection(url, collectionId, split, { pspUrl }) {
  const store = (method, path, body) => expectOk(`${method} ${path}`, method, url + path, { body })
  const base = `/store/payment-collections/${collectionId}`
  const batch = (await store("POST", `${base}/sessions/batch`, { sessions: split })).body
  const sessions = batch.payment_collection.payment_sessions
  // The shopper confirms each card payment in the browser (at the fake PSP the
  // backend's test-pay talks to); authorize only reads it.
  for (const session of sessions) {
    if (session.provider_id !== "manual") await confirmAtPsp(pspUrl, session.data.id)
  }
  const sessionIds = sessions.map((s) => s.id)
  return (await store("POST", `${base}/sessions/batch/authorize`, { session_ids: sessionIds })).body
    .payment_collection
}

async function confirmAtPsp(pspUrl, intentId) {
  const path = `/test/intents/${encodeURIComponent(intentId)}/confirm`
  await expectOk(`POST ${path}`, "POST", pspUrl + path, { body: { outcome: "authorized" } })
}

/** As a shopper: confirms a paid order edit (core attaches the payments to the order). */
async function completeOrderEdit(url, orderEditId) {
  const path = `/store/order-edits/${orderEditId}/complete`
  return (await expectOk(`POST ${path}`, "POST", url + path)).body.order_edit
}

/**
 * The whole story: an order of one mug, an edit adding two (4000 due), paid
 * 1500 with manual and 2500 with test-pay, confirmed.
 */
async function seedOrderWithPaidEdit(url, shop, { adminHeaders, email, pspUrl }) {
  const order = await placeOrder(url, shop, { email })
  const requested = await requestOrderEdit(url, shop, order.id, { adminHeaders, quantity: 2 })
  const collectionId = requested.payment_collection_id
  const due = requested.difference_due
  const manualShare = Math.floor(due * 0.375)
  const collection = await payCollection(
    url,
    collectionId,
    [
      { provider_id: "manual", amount: manualShare },
      { provider_id: "test-pay", amount: due - manualShare },
    ],
    { pspUrl }
  )
  const orderEdit = await completeOrderEdit(url, requested.id)
  return { order, orderEdit, collection }
}

module.exports = {
  createShop,
  placeOrder,
  requestOrderEdit,
  payCollection,
  completeOrderEdit,
  seedOrderWithPaidEdit,
}
