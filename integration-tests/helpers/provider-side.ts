import { createApi } from "./http"
import { psp, PspBehaviour, PspIntent } from "./fake-psp"
import { fakeStripe, FakeStripeFault, StripePaymentIntent } from "./fake-stripe"

// One view over the two providers the specs run against — the fake PSP (the
// test providers test-pay, test-fields, test-legacy) and the fake Stripe API
// (the real medusa-payment-stripe, provider `stripe`) — for specs that check
// the same invariants over both: what the provider holds for a collection,
// the shopper's confirmation, the calls it received, and faults to script.
// Statuses are the fake PSP's names (Stripe's: pending = requires_payment_method
// or requires_confirmation, requires_more = requires_action, authorized =
// requires_capture, captured = succeeded).

export type ProviderStatus = "pending" | "requires_more" | "authorized" | "processing" | "captured" | "canceled"

/** A provider's object (an intent) of a payment collection. */
export interface ProviderObject {
  id: string
  amount: number
  status: ProviderStatus
  /** The provider id (test-pay…, stripe) whose call created it */
  provider: string
  resource_id: string | null
}

/** One call the provider received. */
export interface ProviderCall {
  seq: number
  /** The provider's own name of it (initiatePayment, payment_intents.retrieve…) */
  operation: string
  intentId: string | null
  at: number
  /** ok when answered with a result; in_flight while running; hung when it never will answer */
  outcome: string
  /** The backend process that called, when the provider knows it */
  pid: number | null
  /** Whether an `ok` answer tells the intent's status (what a backend may adopt an authorization from) */
  tellsStatus: boolean
}

/** What the shopper's confirmation leads to: a hold, 3-D Secure pending, or paid at once. */
export type ShopperOutcome = "authorized" | "requires_more" | "captured"

/**
 * A fault, in the fake PSP's words: refuse (a clean refusal, no effect), throw
 * (a 5xx), reset (the connection reset), hang (no answer ever), with or
 * without the effect applied first, or only a delay.
 */
export interface FaultRule {
  fail?: "refuse" | "throw" | "reset" | "hang"
  afterEffect?: boolean
  delayMs?: number
  times: number
  /** Only calls of this provider id (the fake PSP only: Stripe has one) */
  provider?: string
  /** Only calls for this payment collection */
  resourceId?: string
}

export interface ProviderSide {
  name: string
  /** The session providers it backs */
  providerIds: string[]
  /** What the shopper can do to a session's intent with it */
  shopperOutcomes: ShopperOutcome[]
  /** Its operations a spec may script faults on */
  faultOperations: string[]
  /** Its objects of these collections, canceled ones included */
  objects(resourceIds: string | string[]): Promise<ProviderObject[]>
  object(id: string): Promise<ProviderObject>
  /** The shopper confirms the intent a session's data names */
  confirm(sessionData: Record<string, any>, outcome: ShopperOutcome): Promise<ProviderObject>
  /** The calls about one collection, oldest first */
  calls(resourceId: string): Promise<ProviderCall[]>
  /** Replaces the faults of each operation named (an empty list clears it) */
  setFaults(rules: Record<string, FaultRule[]>): Promise<void>
  /** How many rules each operation still holds */
  faultsLeft(): Promise<Record<string, number>>
  clearFaults(): Promise<void>
  reset(): Promise<void>
}

// ------------------------------------------------------------------ fake PSP

const fromPsp = (i: PspIntent): ProviderObject => ({
  id: i.id,
  amount: i.amount,
  status: i.status,
  provider: i.provider,
  resource_id: i.resource_id,
})

const PSP_FAULT_OPERATIONS = [
  "initiatePayment",
  "updatePayment",
  "authorizePayment",
  "deletePayment",
  "retrievePayment",
  "getPaymentStatus",
  "findPaymentSessions",
]

export const fakePspSide: ProviderSide = {
  name: "fake PSP",
  providerIds: ["test-pay", "test-fields", "test-legacy"],
  shopperOutcomes: ["authorized", "requires_more", "captured"],
  faultOperations: PSP_FAULT_OPERATIONS,
  objects: async (resourceIds) => (await psp.intents({ resourceId: resourceIds })).map(fromPsp),
  object: async (id) => fromPsp(await psp.intent(id)),
  confirm: async (data, outcome) => fromPsp(await psp.confirm(String(data.id), outcome)),
  async calls(resourceId) {
    const res = await createApi(psp.url).get(`/test/history?resource_id=${encodeURIComponent(resourceId)}&args=false`)
    if (res.status !== 200) throw new Error(`fake PSP history answered ${res.status}: ${res.text}`)
    return (res.body.history as any[]).map((c) => ({
      seq: c.seq,
      operation: c.method,
      intentId: c.intentId,
      at: c.at,
      outcome: c.outcome,
      pid: c.pid,
      tellsStatus: c.method === "authorizePayment" || c.method === "getPaymentStatus",
    }))
  },
  async setFaults(rules) {
    await psp.behaviour(
      Object.fromEntries(Object.entries(rules).map(([op, list]) => [op, list.length ? (list as PspBehaviour[]) : null]))
    )
  },
  async faultsLeft() {
    const res = await createApi(psp.url).post("/test/behaviours", {})
    if (res.status !== 200) throw new Error(`fake PSP behaviours answered ${res.status}: ${res.text}`)
    return Object.fromEntries(Object.entries(res.body.behaviours as Record<string, unknown[]>).map(([op, list]) => [op, list.length]))
  },
  clearFaults: () => psp.behaviour(Object.fromEntries(PSP_FAULT_OPERATIONS.map((op) => [op, null]))),
  reset: () => psp.reset(),
}

// ------------------------------------------------------------------ fake Stripe

function stripeStatus(i: StripePaymentIntent): ProviderStatus {
  switch (i.status) {
    case "requires_action":
      return "requires_more"
    case "requires_capture":
      return "authorized"
    case "succeeded":
      return "captured"
    case "processing":
      return "processing"
    case "canceled":
      return "canceled"
    default:
      return "pending"
  }
}

const fromStripe = (i: StripePaymentIntent): ProviderObject => ({
  id: i.id,
  amount: i.amount,
  status: stripeStatus(i),
  provider: "stripe",
  resource_id: i.metadata?.resource_id ?? null,
})

/**
 * What medusa-payment-stripe calls: create (initiate; a guest's update
 * re-creates too), retrieve (authorize, status, retrieve, the plugin's own
 * read before a removal), cancel (delete, cancel), customers.create (every
 * initiate of a guest), list and search (the plugin's finder).
 */
const STRIPE_FAULT_OPERATIONS = [
  "payment_intents.create",
  "payment_intents.retrieve",
  "payment_intents.cancel",
  "customers.create",
  "payment_intents.list",
]

function stripeRule(rule: FaultRule): FakeStripeFault {
  const out: FakeStripeFault = { times: rule.times }
  if (rule.delayMs !== undefined) out.delayMs = rule.delayMs
  if (rule.afterEffect) out.afterEffect = true
  if (rule.resourceId) out.resourceId = rule.resourceId
  switch (rule.fail) {
    case "refuse":
      // What Stripe answers a request it refuses (medusa-payment-stripe returns it as a PaymentProcessorError with its code).
      out.fail = "error"
      out.status = 402
      out.error = { type: "card_error", code: "card_declined", decline_code: "generic_decline", message: "Your card was declined." }
      break
    case "throw":
      out.fail = "api_error"
      break
    case "reset":
    case "hang":
      out.fail = rule.fail
      break
  }
  return out
}

export const fakeStripeSide: ProviderSide = {
  name: "fake Stripe",
  providerIds: ["stripe"],
  // The host captures manually: a confirmation holds the money (requires_capture).
  shopperOutcomes: ["authorized", "requires_more"],
  faultOperations: STRIPE_FAULT_OPERATIONS,
  objects: async (resourceIds) => (await fakeStripe.paymentIntents({ resourceId: resourceIds })).map(fromStripe),
  object: async (id) => fromStripe(await fakeStripe.paymentIntent(id)),
  async confirm(data, outcome) {
    if (outcome === "captured") throw new Error("the fake Stripe's host captures manually: no confirmation captures")
    const answer = await fakeStripe.confirmSession({ data }, outcome === "requires_more" ? "requires_action" : "authorized")
    return fromStripe(answer.payment_intent)
  },
  async calls(resourceId) {
    return (await fakeStripe.history({ resourceId })).map((c) => ({
      seq: c.seq,
      operation: c.operation,
      intentId: c.object_id,
      at: c.at,
      outcome: c.outcome === "fault:hang" ? "hung" : c.outcome === "replayed" ? "ok" : c.outcome,
      pid: null,
      tellsStatus: c.operation === "payment_intents.retrieve",
    }))
  },
  async setFaults(rules) {
    await fakeStripe.faults(
      Object.fromEntries(Object.entries(rules).map(([op, list]) => [op, list.length ? list.map(stripeRule) : null])) as any
    )
  },
  async faultsLeft() {
    const state = await fakeStripe.state()
    return Object.fromEntries(Object.entries(state.faults).map(([op, list]) => [op, (list ?? []).length]))
  },
  clearFaults: () => fakeStripe.faults(Object.fromEntries(STRIPE_FAULT_OPERATIONS.map((op) => [op, null])) as any),
  reset: () => fakeStripe.reset(),
}
