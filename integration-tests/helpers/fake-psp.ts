import { testEnv } from "./env"
import { createApi, HttpResponse } from "./http"

// The run's one fake PSP (integration-tests/fixtures/fake-psp), started by
// global-setup. Every backend's test payment providers (test-pay, test-fields,
// test-legacy, test-nofind) call it, so it is the one provider all backends share, and its
// state outlives any backend. Specs script it, play the shopper on it and
// inspect it here.

/** The PSP's operations, named after the AbstractPaymentProcessor methods they serve. */
export type PspOperation =
  | "initiatePayment"
  | "updatePayment"
  | "authorizePayment"
  | "deletePayment"
  | "cancelPayment"
  | "retrievePayment"
  | "capturePayment"
  | "refundPayment"
  | "getPaymentStatus"
  | "updatePaymentData"
  /** The optional finder (not on test-nofind) */
  | "findPaymentSessions"

/**
 * Stripe's PaymentIntent statuses, by other names: pending (requires_payment_method),
 * requires_more (requires_action), authorized (requires_capture), processing
 * (processing: funds on their way), captured (succeeded), canceled.
 */
export type IntentStatus = "pending" | "requires_more" | "authorized" | "processing" | "captured" | "canceled"

/**
 * What the shopper's confirmation leads to: the hold exists (authorized), 3-D
 * Secure pending (requires_more), paid at once (captured: automatic capture),
 * funds on their way (processing: SEPA).
 */
export type ConfirmOutcome = "authorized" | "requires_more" | "captured" | "processing"

/** How the bank settles a processing intent: funds arrived (captured) or failed (back to pending). */
export type SettleOutcome = "captured" | "failed"

/** The test providers, all backed by this PSP; every one but test-nofind has the finder. */
export const PSP_PROVIDERS = ["test-pay", "test-fields", "test-legacy", "test-nofind"] as const
export const FINDER_PROVIDERS = ["test-pay", "test-fields", "test-legacy"] as const

export interface PspIntent {
  id: string
  client_secret: string
  status: IntentStatus
  amount: number
  currency_code: string
  /** The payment collection it was created for */
  resource_id: string | null
  /** The provider id that created it (test-pay, test-fields, test-legacy, test-nofind) */
  provider: string
  email: string | null
  customer: { id: string; email?: string } | null
  context: Record<string, unknown> | null
  amount_captured: number
  amount_refunded: number
  created_at: number
  canceled_at: number | null
}

export interface PspBehaviour {
  delayMs?: number
  /**
   * refuse: the provider answers a PaymentProcessorError (test-legacy and every
   * finder throw it); throw: a 500, the provider throws; reset: the connection
   * is reset without an answer, the provider throws (ECONNRESET); hang: no
   * answer ever
   */
  fail?: "refuse" | "throw" | "reset" | "hang"
  /** How many of the next matching calls; absent = all of them */
  times?: number
  /**
   * Apply the effect first, then delay/fail the answer: a late answer, an
   * effect with a 500 or a reset connection, or a caller dying mid-call
   */
  afterEffect?: boolean
  /** Only calls from this provider id */
  provider?: string
  /** Only calls on this intent */
  intentId?: string
  /** Only calls for this payment collection */
  resourceId?: string
}

export type PspBehaviours = Partial<Record<PspOperation, PspBehaviour | PspBehaviour[] | null>>

export interface PspState {
  calls: Record<PspOperation, number>
  callsByProvider: Record<string, Record<PspOperation, number>>
  inflight: Record<PspOperation, number>
  maxInflight: Record<PspOperation, number>
  /** Every intent, canceled ones included, oldest first */
  intents: PspIntent[]
  /** Intents not canceled: what a real provider would still hold */
  live: PspIntent[]
  behaviours: Partial<Record<PspOperation, PspBehaviour[]>>
  finder: FinderSettings
}

/** The finder's index lag: for every provider (lagMs) and per provider id. */
export interface FinderSettings {
  lagMs: number
  byProvider: Record<string, number>
}

export interface PspCall {
  seq: number
  method: PspOperation
  provider: string
  /** The backend process that called */
  pid: number | null
  intentId: string | null
  resourceId: string | null
  at: number
  /** ok, refused, threw, reset, hung, in_flight, or error:<code> (e.g. error:payment_intent_unexpected_state) */
  outcome: string
  /** The provider method's arguments as the provider received them (JSON) */
  args: unknown[] | null
}

export interface IntentFilter {
  /** The payment collection(s) the intents were created for */
  resourceId?: string | string[]
  provider?: string
  /** Only intents not canceled */
  live?: boolean
}

export interface HistoryFilter {
  method?: PspOperation
  provider?: string
  intentId?: string
  resourceId?: string
}

function expectOk<T>(what: string, res: HttpResponse<T>): T {
  if (res.status < 200 || res.status >= 300) throw new Error(`fake PSP: ${what} answered ${res.status}: ${res.text}`)
  return res.body
}

function query(params: Record<string, string | string[] | undefined>): string {
  const search = new URLSearchParams()
  for (const [key, value] of Object.entries(params)) {
    for (const v of Array.isArray(value) ? value : value === undefined ? [] : [value]) search.append(key, v)
  }
  const text = search.toString()
  return text ? `?${text}` : ""
}

const http = () => createApi(testEnv().pspUrl)

export const psp = {
  get url(): string {
    return testEnv().pspUrl
  },

  async state(): Promise<PspState> {
    const state = expectOk("GET /test/state", await http().get("/test/state"))
    return { ...state, live: state.intents.filter((i: PspIntent) => i.status !== "canceled") }
  },

  async intents(filter: IntentFilter = {}): Promise<PspIntent[]> {
    const path = `/test/intents${query({
      resource_id: filter.resourceId,
      provider: filter.provider,
      live: filter.live ? "true" : undefined,
    })}`
    return expectOk(`GET ${path}`, await http().get(path)).intents
  },

  /** Intents the PSP still holds (not canceled), optionally of one payment collection. */
  liveIntents(resourceId?: string | string[]): Promise<PspIntent[]> {
    return psp.intents({ resourceId, live: true })
  },

  async intent(id: string): Promise<PspIntent> {
    const path = `/test/intents/${encodeURIComponent(id)}`
    return expectOk(`GET ${path}`, await http().get(path)).intent
  },

  async history(filter: HistoryFilter = {}): Promise<PspCall[]> {
    const path = `/test/history${query({
      method: filter.method,
      provider: filter.provider,
      intent_id: filter.intentId,
      resource_id: filter.resourceId,
    })}`
    return expectOk(`GET ${path}`, await http().get(path)).history
  },

  /**
   * The shopper confirms the payment in the browser, at any moment: the intent
   * becomes authorized (the hold exists), requires_more (3-D Secure pending),
   * captured (automatic capture) or processing (SEPA: cancel and delete are
   * refused until the bank settles it).
   */
  async confirm(intentId: string, outcome: ConfirmOutcome = "authorized"): Promise<PspIntent> {
    const path = `/test/intents/${encodeURIComponent(intentId)}/confirm`
    return expectOk(`POST ${path}`, await http().post(path, { outcome })).intent
  },

  /** The shopper confirms the intent a payment session holds (`session.data.id`). */
  confirmSession(session: { data: { id?: unknown } | null }, outcome: ConfirmOutcome = "authorized"): Promise<PspIntent> {
    const id = session.data?.id
    if (typeof id !== "string") throw new Error(`session holds no intent id: ${JSON.stringify(session.data)}`)
    return psp.confirm(id, outcome)
  },

  /**
   * The shopper confirms every intent of a payment collection still waiting
   * for it (pending or requires_more), optionally of one provider; answers those.
   */
  async confirmCollection(
    resourceId: string,
    outcome: ConfirmOutcome = "authorized",
    provider?: string
  ): Promise<PspIntent[]> {
    const body = { resource_id: resourceId, outcome, ...(provider ? { provider } : {}) }
    return expectOk("POST /test/confirm", await http().post("/test/confirm", body)).intents
  },

  /** The bank settles a processing intent: captured, or failed (back to pending). */
  async settle(intentId: string, outcome: SettleOutcome): Promise<PspIntent> {
    const path = `/test/intents/${encodeURIComponent(intentId)}/settle`
    return expectOk(`POST ${path}`, await http().post(path, { outcome })).intent
  },

  /**
   * The finder's index lag: an intent shows `lagMs` after its creation, and an
   * answer is complete only when its whole window is older than that. For one
   * provider id, or (without) for every provider without its own. Reset sets 0.
   */
  async finderLag(lagMs: number, provider?: string): Promise<FinderSettings> {
    const body = { lagMs, ...(provider ? { provider } : {}) }
    return expectOk("POST /test/finder", await http().post("/test/finder", body)).finder
  },

  /** Replaces the rules of each operation named; `null` clears an operation's rules. */
  async behaviour(config: PspBehaviours): Promise<void> {
    expectOk("POST /test/behaviours", await http().post("/test/behaviours", config))
  },

  /** Forgets intents, behaviours, the finder's lag, counts and history. */
  async reset(): Promise<void> {
    expectOk("POST /test/reset", await http().post("/test/reset"))
  },
}
