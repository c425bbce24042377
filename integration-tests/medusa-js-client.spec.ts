import Medusa from "@medusajs/medusa-js"
import { checkMedusaJsAnswers } from "./helpers/contract-check"
import { testEnv } from "./helpers/env"
import { createPaymentCollection, createRegion, db } from "./helpers/factories"
import { psp } from "./helpers/fake-psp"

const PLUGIN_HEADER = "x-payment-collections-plugin"

/** What a rejected medusa-js call carries: axios' error with the server's answer. */
async function failureOf(call: Promise<unknown>): Promise<{ status: number; body: any }> {
  try {
    await call
  } catch (err) {
    const response = (err as { response?: { status: number; data: unknown } }).response
    if (!response) throw err
    return { status: response.status, body: response.data }
  }
  throw new Error("expected the call to be rejected, it resolved")
}

async function linkedPayments(collectionId: string) {
  const { rows } = await db.query(
    `SELECT p.amount, p.provider_id FROM payment p
       JOIN payment_collection_payments pcp ON pcp.payment_id = p.id
      WHERE pcp.payment_collection_id = $1 ORDER BY p.amount`,
    [collectionId]
  )
  return rows
}

// The storefront client published for Medusa 1.x (@medusajs/medusa-js 6.1.10), used unchanged.
describe("@medusajs/medusa-js against the plugin's Payment Collections endpoints", () => {
  let medusa: Medusa
  let region: any

  beforeAll(async () => {
    medusa = new Medusa({ baseUrl: testEnv().backendUrl, maxRetries: 0 })
    // Its answers are checked against openapi.json like those of helpers/http.ts.
    checkMedusaJsAnswers(medusa.client, testEnv().backendUrl)
    region = await createRegion({ providers: ["manual", "test-pay"] })
  })

  beforeEach(() => psp.reset())

  afterAll(() => db.end())

  it("paymentCollections.retrieve() returns the collection, with fields/expand passed as query", async () => {
    const collection = await createPaymentCollection({ regionId: region.id, amount: 1500, description: "Order edit" })

    const full = await medusa.paymentCollections.retrieve(collection.id)

    expect(full.response.status).toBe(200)
    expect(full.response.headers[PLUGIN_HEADER]).toMatch(/^medusa-plugin-payment-collections@/)
    expect(full.payment_collection).toMatchObject({
      id: collection.id,
      amount: 1500,
      status: "not_paid",
      description: "Order edit",
      payment_sessions: [],
    })
    expect(full.payment_collection.region.id).toBe(region.id)

    const narrow = await medusa.paymentCollections.retrieve(collection.id, {
      fields: "id,amount",
      expand: "payment_sessions",
    })
    expect(Object.keys(narrow.payment_collection).sort()).toEqual(["amount", "id", "payment_sessions"])
  })

  it("managePaymentSession() creates the session, refreshPaymentSession() replaces it, authorizePaymentSession() authorizes it", async () => {
    const collection = await createPaymentCollection({ regionId: region.id, amount: 2000 })

    const created = await medusa.paymentCollections.managePaymentSession(collection.id, { provider_id: "test-pay" })
    expect(created.response.status).toBe(200)
    expect(created.response.headers[PLUGIN_HEADER]).toBeDefined()
    expect(created.payment_collection.payment_sessions).toHaveLength(1)
    const first = created.payment_collection.payment_sessions[0]
    expect(first).toMatchObject({ provider_id: "test-pay", amount: 2000, status: "pending" })

    const refreshed = await medusa.paymentCollections.refreshPaymentSession(collection.id, first.id)
    expect(refreshed.response.status).toBe(200)
    expect(refreshed.payment_session).toMatchObject({ provider_id: "test-pay", amount: 2000, status: "pending" })
    expect(refreshed.payment_session.id).not.toBe(first.id)
    await psp.confirmSession(refreshed.payment_session)

    // medusa-js 6.1.10 types this answer as { payment_collection }; core and the plugin answer { payment_session }.
    const authorized = (await medusa.paymentCollections.authorizePaymentSession(
      collection.id,
      refreshed.payment_session.id
    )) as unknown as { payment_session: { id: string; status: string; amount: number }; response: { status: number } }
    expect(authorized.response.status).toBe(200)
    expect(authorized.payment_session).toMatchObject({
      id: refreshed.payment_session.id,
      status: "authorized",
      amount: 2000,
    })

    const after = await medusa.paymentCollections.retrieve(collection.id)
    expect(after.payment_collection.status).toBe("authorized")
    expect(after.payment_collection.payment_sessions.map((s) => s.id)).toEqual([refreshed.payment_session.id])
    expect(await linkedPayments(collection.id)).toEqual([{ amount: 2000, provider_id: "test-pay" }])
    expect((await psp.state()).live).toEqual([
      expect.objectContaining({ id: refreshed.payment_session.data.id, status: "authorized" }),
    ])
  })

  it("managePaymentSessionsBatch() splits the payment, authorizePaymentSessionsBatch() authorizes both parts", async () => {
    const collection = await createPaymentCollection({ regionId: region.id, amount: 1000 })

    const managed = await medusa.paymentCollections.managePaymentSessionsBatch(collection.id, {
      sessions: [
        { provider_id: "manual", amount: 250 },
        { provider_id: "test-pay", amount: 750 },
      ],
    })
    expect(managed.response.status).toBe(200)
    const sessions = managed.payment_collection.payment_sessions
    expect(sessions.map((s) => `${s.provider_id}:${s.amount}`).sort()).toEqual(["manual:250", "test-pay:750"])
    await psp.confirmSession(sessions.find((s) => s.provider_id === "test-pay")!)

    const authorized = await medusa.paymentCollections.authorizePaymentSessionsBatch(collection.id, {
      session_ids: sessions.map((s) => s.id),
    })
    expect(authorized.response.status).toBe(200)
    expect(authorized.payment_collection).toMatchObject({
      id: collection.id,
      status: "authorized",
      authorized_amount: 1000,
    })
    expect(authorized.payment_collection.payment_sessions.map((s) => s.status)).toEqual(["authorized", "authorized"])
    expect(await linkedPayments(collection.id)).toEqual([
      { amount: 250, provider_id: "manual" },
      { amount: 750, provider_id: "test-pay" },
    ])
  })

  it("a shopper whose provider refused rearranges the sessions through the client and pays", async () => {
    const collection = await createPaymentCollection({ regionId: region.id, amount: 1000 })
    const managed = await medusa.paymentCollections.managePaymentSessionsBatch(collection.id, {
      sessions: [
        { provider_id: "manual", amount: 600 },
        { provider_id: "test-pay", amount: 400 },
      ],
    })
    const manual = managed.payment_collection.payment_sessions.find((s) => s.provider_id === "manual")!
    const tp = managed.payment_collection.payment_sessions.find((s) => s.provider_id === "test-pay")!
    await psp.behaviour({ authorizePayment: { fail: "refuse", times: 1 } })

    const refused = await failureOf(
      medusa.paymentCollections.authorizePaymentSessionsBatch(collection.id, { session_ids: [manual.id, tp.id] })
    )
    expect(refused.status).toBe(422)
    expect(refused.body.type).toBe("payment_authorization_error")

    const rearranged = await medusa.paymentCollections.managePaymentSessionsBatch(collection.id, {
      sessions: [
        { provider_id: "manual", amount: 600, session_id: manual.id },
        { provider_id: "manual", amount: 400 },
      ],
    })
    expect(rearranged.payment_collection.status).toBe("partially_authorized")
    const added = rearranged.payment_collection.payment_sessions.find((s) => s.id !== manual.id)!

    const paid = await medusa.paymentCollections.authorizePaymentSessionsBatch(collection.id, { session_ids: [added.id] })
    expect(paid.payment_collection).toMatchObject({ status: "authorized", authorized_amount: 1000 })
  })

  it("errors reject with Medusa's error body", async () => {
    const collection = await createPaymentCollection({ regionId: region.id, amount: 1000 })

    const notFound = await failureOf(medusa.paymentCollections.retrieve("paycol_does_not_exist"))
    expect(notFound.status).toBe(404)
    expect(notFound.body.type).toBe("not_found")

    const badBatch = await failureOf(
      medusa.paymentCollections.managePaymentSessionsBatch(collection.id, {
        sessions: [{ provider_id: "manual", amount: 999 }],
      })
    )
    expect(badBatch.status).toBe(400)
    expect(badBatch.body.type).toBe("invalid_data")

    const created = await medusa.paymentCollections.managePaymentSession(collection.id, { provider_id: "test-pay" })
    // The shopper has not confirmed the payment at the provider yet.
    const session = created.payment_collection.payment_sessions[0]
    const notAuthorized = await failureOf(medusa.paymentCollections.authorizePaymentSession(collection.id, session.id))
    expect(notAuthorized.status).toBe(422)
    expect(notAuthorized.body.type).toBe("payment_authorization_error")

    const foreign = await failureOf(medusa.paymentCollections.refreshPaymentSession(collection.id, "ps_not_in_this_collection"))
    expect(foreign.status).toBe(404)
    expect(foreign.body.type).toBe("not_found")
  })
})
