"use strict"

// Data for scripts/bench.js: an admin, a region, and per backend the same
// number of payment collections (and sessions) with the same amounts.

const crypto = require("crypto")
const { expectOk } = require("./http-json")

const AMOUNT = 5000
const CURRENCY = "usd"
const PROVIDERS = ["manual", "test-pay"]
// What core's PaymentProviderService.createSession stores for medusa-payment-manual.
const { entityId } = require("./entity-id")

const MANUAL_SESSION_DATA = { status: "pending" }

function entityIds(prefix, count) {
  return Array.from({ length: count }, () => entityId(prefix))
}

async function createAdminToken(db) {
  const token = `pcp_bench_${crypto.randomBytes(16).toString("hex")}`
  await db.query(
    `INSERT INTO "user" (id, email, first_name, last_name, api_token, role)
     VALUES ($1, 'admin@pcp.bench', 'Bench', 'Admin', $2, 'admin')`,
    [entityId("usr"), token]
  )
  return token
}

/** Through the admin API, as integration-tests/helpers/factories.ts does. */
async function createRegion(backendUrl, adminToken) {
  const headers = { "x-medusa-access-token": adminToken }
  const { body } = await expectOk("store", "GET", `${backendUrl}/admin/store`, { headers })
  if (!body.store.currencies.some((c) => c.code === CURRENCY)) {
    await expectOk("currency", "POST", `${backendUrl}/admin/store/currencies/${CURRENCY}`, { headers })
  }
  const res = await expectOk("region", "POST", `${backendUrl}/admin/regions`, {
    headers,
    body: {
      name: "Bench region",
      currency_code: CURRENCY,
      tax_rate: 0,
      payment_providers: PROVIDERS,
      fulfillment_providers: [],
      countries: [],
    },
  })
  return res.body.region.id
}

/**
 * Products for the host-tax cases (core's GET /store/products), through the
 * admin API: each with one option and three priced variants.
 */
async function createProducts(backendUrl, adminToken, count = 12) {
  const headers = { "x-medusa-access-token": adminToken }
  for (let i = 0; i < count; i++) {
    await expectOk("product", "POST", `${backendUrl}/admin/products`, {
      headers,
      body: {
        title: `Bench product ${i + 1}`,
        description: "A product the host-tax cases list.",
        status: "published",
        options: [{ title: "Size" }],
        variants: ["S", "M", "L"].map((size, v) => ({
          title: size,
          inventory_quantity: 100,
          manage_inventory: false,
          prices: [{ currency_code: CURRENCY, amount: 1000 + 100 * v }],
          options: [{ value: size }],
        })),
      },
    })
  }
}

async function insertCollections(db, regionId, count) {
  const ids = entityIds("paycol", count)
  await db.query(
    `INSERT INTO payment_collection
       (id, type, status, description, amount, region_id, currency_code, metadata, created_by)
     SELECT id, 'order_edit', 'not_paid', NULL, $2, $3, $4, NULL, 'bench'
       FROM unnest($1::text[]) AS id`,
    [ids, AMOUNT, regionId, CURRENCY]
  )
  return ids
}

/** One pending manual session per collection, for its full amount, linked like core links it. */
async function insertManualSessions(db, collectionIds) {
  const sessionIds = entityIds("ps", collectionIds.length)
  await db.query(
    `INSERT INTO payment_session (id, cart_id, provider_id, is_selected, status, data, amount, is_initiated)
     SELECT id, NULL, 'manual', NULL, 'pending', $2, $3, true FROM unnest($1::text[]) AS id`,
    [sessionIds, MANUAL_SESSION_DATA, AMOUNT]
  )
  await db.query(
    `INSERT INTO payment_collection_sessions (payment_collection_id, payment_session_id)
     SELECT * FROM unnest($1::text[], $2::text[])`,
    [collectionIds, sessionIds]
  )
  return collectionIds.map((collectionId, i) => ({ collectionId, sessionId: sessionIds[i] }))
}

async function collectionsWithSessions(db, regionId, count) {
  return insertManualSessions(db, await insertCollections(db, regionId, count))
}

/**
 * Everything one backend's run consumes. `fresh` collections are used once
 * each; `probes` are for the one-request SQL captures, kept apart so the timed
 * pools start untouched.
 */
async function seedBackendData(db, regionId, { fresh, slowFresh }) {
  const [update] = await insertCollections(db, regionId, 1)
  const [get] = await collectionsWithSessions(db, regionId, 1)
  return {
    update,
    get: get.collectionId,
    create: await insertCollections(db, regionId, fresh),
    authorize: await collectionsWithSessions(db, regionId, fresh),
    slowCreate: await insertCollections(db, regionId, slowFresh),
    probes: {
      create: await insertCollections(db, regionId, 2),
      authorize: await collectionsWithSessions(db, regionId, 2),
    },
  }
}

async function analyzeTables(db) {
  await db.query(
    "ANALYZE payment_collection, payment_session, payment_collection_sessions, payment_collection_payments, payment"
  )
}

module.exports = { AMOUNT, createAdminToken, createRegion, createProducts, seedBackendData, analyzeTables }
