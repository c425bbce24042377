import { createApi } from "./helpers/http"
import { createPaymentCollection, db } from "./helpers/factories"
import { replaceTestEnv } from "./helpers/env"
import { ExtraBackend, startExtraBackend, stopExtraBackends } from "./helpers/backend"
import { fakeStripe, StripeEvent } from "./helpers/fake-stripe"
import { attemptRows, waitForSettledJournal } from "./helpers/journal"
import { base, collectionRow, linkedPayments, linkedSessions, sleep } from "./helpers/payments"
import { Shop } from "./helpers/order-edit-seed"
import { OwnDatabase, useOwnDatabase } from "./helpers/own-database"
import { dropRunEventQueue, runEventQueueKeys, TestRedis, testRedis } from "./helpers/redis"
import {
  createStripeShop,
  orderEditRow,
  providerEvents,
  requestEdit,
  stripeSession,
  waitForCollectionStatus,
  waitForEditStatus,
} from "./helpers/stripe-shop"

// Medusa's production topology: @medusajs/event-bus-redis on a real Redis and
// two processes on one database, MEDUSA_WORKER_MODE=server taking the HTTP
// traffic (Stripe's webhook included) and MEDUSA_WORKER_MODE=worker handling the
// events. The server stages the webhook's event and hands it to Redis; only the
// worker consumes it, and the collection is authorized and the edit completed
// as one process does it. The plugin's reconciler runs in the worker, not in
// the server: a provider call the server left open is settled by the worker.
//
// An event that waits in Redis while no worker runs is taken by the next
// worker as it boots, before its subscribers are registered, and dropped
// (event-bus-redis 1.8.14 starts its BullMQ worker in its constructor;
// medusajs/medusa#7223, fixed for v2 only by #10823): what the status sync is
// for. So both processes have it on, as by default — it runs in the worker
// only —, until the worker is started again without it to show that the
// webhook alone gets through.
//
// On a database of its own, so that these two are its only processes (every
// backend on a database runs the reconciler and core's event enqueuer there).
// finder_settle_ms is 3 s so that the server's own request cannot settle its
// open call before it answers.

const OPTIONS = { reconcile_interval_ms: 500, provider_timeout_ms: 1500, finder_settle_ms: 3000 }

function processEnv(redisUrl: string, mode: "server" | "worker", options: Record<string, unknown> = {}): Record<string, string> {
  return {
    PAYMENT_COLLECTIONS_OPTIONS: JSON.stringify({ ...OPTIONS, ...options }),
    REDIS_URL: redisUrl,
    MEDUSA_WORKER_MODE: mode,
    ...(process.env.PCP_DEBUG_LOG_LEVEL ? { LOG_LEVEL: process.env.PCP_DEBUG_LOG_LEVEL } : {}),
  }
}

/** The event Stripe generated for the intent. */
async function stripeEvent(type: string, intentId: string): Promise<StripeEvent> {
  const events = await fakeStripe.events({ type, objectId: intentId })
  if (events.length !== 1) throw new Error(`expected one ${type} event of ${intentId}, Stripe has ${events.length}`)
  return events[0]
}

/** The ids of the Stripe events the process's subscribers were handed (the event-recorder fixture). */
async function handedEvents(url: string): Promise<string[]> {
  const res = await createApi(url).get("/event-recorder/events?event=medusa.stripe_payment_intent_update")
  if (res.status !== 200) throw new Error(`GET /event-recorder/events answered ${res.status}: ${res.text}`)
  return res.body.events.map((e: any) => e.data?.id)
}

/** The process (journal rows name it hostname:pid:random) that asked Stripe about the session. */
async function askedBy(collectionId: string, sessionId: string): Promise<string[]> {
  return (await attemptProcesses(collectionId)).filter((r) => r.operation === "status" && r.payment_session_id === sessionId).map((r) => r.process)
}

async function attemptProcesses(collectionId: string): Promise<{ operation: string; payment_session_id: string | null; process: string }[]> {
  const { rows } = await db.query(
    `SELECT operation, payment_session_id, process FROM payment_collection_attempt WHERE payment_collection_id = $1 ORDER BY created_at, id`,
    [collectionId]
  )
  return rows
}

const ofPid = (pid: number) => new RegExp(`:${pid}:`)

describe("a server process and a worker process on one database, with the Redis event bus", () => {
  let own: OwnDatabase
  let redis: TestRedis
  let server: ExtraBackend
  let worker: ExtraBackend
  let shop: Shop

  beforeAll(async () => {
    own = await useOwnDatabase("topology")
    redis = await testRedis()
    server = await startExtraBackend({ env: processEnv(redis.url, "server"), logFile: process.env.PCP_BACKEND_LOG || undefined })
    replaceTestEnv({ backendUrl: server.url })
    shop = await createStripeShop(server.url)
  }, 240_000)

  afterAll(async () => {
    await fakeStripe.faults({ "payment_intents.create": null })
    await stopExtraBackends()
    if (redis) {
      await dropRunEventQueue(redis.url)
      await redis.stop()
    }
    await own?.drop()
  }, 60_000)

  it("the server alone handles no event and runs no reconciler pass; a worker, once it runs, settles its open call and records the authorization", async () => {
    expect((await runEventQueueKeys(redis.url)).length).toBeGreaterThan(0)
    // The shopper confirms the edit's payment at Stripe and closes the tab; Stripe's webhook reaches the server
    // (the server has the status sync on too, but runs no reconciler pass).
    const { order, edit, collectionId } = await requestEdit(server.url, shop)
    const session = await stripeSession(server.url, collectionId)
    await fakeStripe.confirmSession(session)
    const event = await stripeEvent("payment_intent.amount_capturable_updated", session.data.id)
    expect((await fakeStripe.sendWebhook(server.url, event)).status).toBe(200)
    // A storefront request on the server whose provider call is lost after Stripe made the intent: left open.
    const lost = await createPaymentCollection({ regionId: shop.regionId, amount: 1700 })
    await fakeStripe.faults({ "payment_intents.create": { fail: "api_error", afterEffect: true, times: 1, resourceId: lost.id } })
    const failed = await createApi(server.url).post(`${base(lost.id)}/sessions`, { provider_id: "stripe" })
    expect(failed.status).toBe(502)
    // The request itself searched Stripe and canceled what the lost call made, but may not
    // conclude before finder_settle_ms: its initiate row stays open for a reconciler.
    const [open] = await attemptRows(lost.id)
    expect(open).toMatchObject({ operation: "initiate", provider_id: "stripe", state: "uncertain" })

    // Past finder_settle_ms and ten reconciler intervals: a reconciler would have settled the call by now.
    await sleep(OPTIONS.finder_settle_ms + 10 * OPTIONS.reconcile_interval_ms)

    expect((await attemptRows(lost.id)).find((r) => r.id === open.id)).toMatchObject({ state: "uncertain" })
    expect(await collectionRow(collectionId)).toMatchObject({ status: "not_paid" })
    expect(await orderEditRow(edit.id)).toMatchObject({ status: "requested" })
    expect(await handedEvents(server.url)).not.toContain(event.id)

    const startedAt = Date.now()
    worker = await startExtraBackend({ env: processEnv(redis.url, "worker"), logFile: process.env.PCP_BACKEND_LOG || undefined })
    const readyAt = Date.now()
    const authorizedAt = await waitForCollectionStatus(collectionId, "authorized", 30_000)
    const completedAt = await waitForEditStatus(edit.id, "confirmed", 30_000)
    console.log(
      `production topology: the worker booted in ${readyAt - startedAt} ms, then recorded the authorization the server left after ${authorizedAt - readyAt} ms and completed the edit after ${completedAt - readyAt} ms`
    )

    expect(await linkedPayments(collectionId)).toEqual([
      expect.objectContaining({ provider_id: "stripe", amount: 4000, order_id: order.id, captured_at: null }),
    ])
    // Every question to Stripe about the session came from the worker (its status sync, or the event if it got it).
    const asked = await askedBy(collectionId, session.id)
    expect(asked.length).toBeGreaterThan(0)
    for (const owner of asked) expect(owner).toMatch(ofPid(worker.pid))
    expect(await handedEvents(server.url)).toEqual([])
    // The server's open call, settled by the worker's reconciler: the intent the lost call made is canceled, no session kept.
    const settled = await waitForSettledJournal(lost.id, 30_000)
    expect(settled.find((r) => r.id === open.id)).toMatchObject({ state: "undone" })
    expect((await attemptProcesses(lost.id))[0].process).toMatch(ofPid(server.pid))
    expect(await linkedSessions(lost.id)).toEqual([])
    expect(await fakeStripe.liveIntents(lost.id)).toEqual([])
  }, 300_000)

  it("with both running, the webhook the server receives is handled by the worker, with the same results as one process", async () => {
    // The worker again, without the status sync: only the webhook can record the authorization now.
    await worker.stop()
    worker = await startExtraBackend({
      env: processEnv(redis.url, "worker", { status_sync_window_hours: 0 }),
      logFile: process.env.PCP_BACKEND_LOG || undefined,
    })
    const { order, edit, collectionId } = await requestEdit(server.url, shop)
    const session = await stripeSession(server.url, collectionId)
    await fakeStripe.confirmSession(session)
    const event = await stripeEvent("payment_intent.amount_capturable_updated", session.data.id)

    const sent = Date.now()
    expect((await fakeStripe.sendWebhook(server.url, event)).status).toBe(200)
    const authorizedAt = await waitForCollectionStatus(collectionId, "authorized")
    const completedAt = await waitForEditStatus(edit.id, "confirmed")
    console.log(
      `production topology: ms from POST /stripe/hooks on the server to the collection authorized by the worker ${authorizedAt - sent}, to the edit completed ${completedAt - sent}`
    )

    expect(await collectionRow(collectionId)).toMatchObject({ status: "authorized", authorized_amount: 4000 })
    expect(await linkedSessions(collectionId)).toEqual([expect.objectContaining({ id: session.id, status: "authorized" })])
    const payments = await linkedPayments(collectionId)
    expect(payments).toEqual([
      expect.objectContaining({ provider_id: "stripe", amount: 4000, order_id: order.id, captured_at: null, canceled_at: null }),
    ])
    expect(payments[0].data).toMatchObject({ id: session.data.id, status: "requires_capture" })
    expect(await providerEvents(collectionId)).toEqual([event.id])
    expect(await handedEvents(worker.url)).toContain(event.id)
    expect(await handedEvents(server.url)).toEqual([])
    expect(await askedBy(collectionId, session.id)).toEqual([expect.stringMatching(ofPid(worker.pid))])
    expect(await fakeStripe.paymentIntent(session.data.id)).toMatchObject({ status: "requires_capture" })
  }, 240_000)
})
