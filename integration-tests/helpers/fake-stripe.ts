import path from "path"
import type Stripe from "stripe"
import { testEnv } from "./env"
import { createApi, HttpResponse } from "./http"

// The run's one fake Stripe API (integration-tests/fixtures/fake-stripe), started
// by global-setup. Every backend's medusa-payment-stripe (providers stripe,
// stripe-blik…) calls it through its own stripe-node, so it is the one Stripe
// account all backends share, and its state outlives any backend. Specs play the
// shopper on it (Stripe.js), script its faults, send its webhooks and inspect it
// here; `client()` is stripe-node itself, pointed at the fake.

/** The fake's endpoints, named as stripe-node names the calls. */
export type StripeOperation =
  | "payment_intents.create"
  | "payment_intents.retrieve"
  | "payment_intents.update"
  | "payment_intents.capture"
  | "payment_intents.cancel"
  | "payment_intents.list"
  | "payment_intents.search"
  | "customers.create"
  | "customers.retrieve"
  | "customers.update"
  | "refunds.create"
  | "refunds.retrieve"

export type PaymentIntentStatus =
  | "requires_payment_method"
  | "requires_confirmation"
  | "requires_action"
  | "processing"
  | "requires_capture"
  | "succeeded"
  | "canceled"

/** Stripe's PaymentIntent (API version 2022-11-15), the fields specs read. */
export interface StripePaymentIntent {
  id: string
  object: "payment_intent"
  amount: number
  amount_capturable: number
  amount_received: number
  capture_method: "automatic" | "automatic_async" | "manual"
  client_secret: string
  created: number
  currency: string
  customer: string | null
  description: string | null
  last_payment_error: { type: string; code?: string; decline_code?: string; message: string } | null
  latest_charge: string | null
  metadata: Record<string, string>
  next_action: Record<string, unknown> | null
  payment_method: string | null
  payment_method_types: string[]
  setup_future_usage: string | null
  status: PaymentIntentStatus
  canceled_at: number | null
  cancellation_reason: string | null
  [field: string]: unknown
}

export interface StripeCustomer {
  id: string
  object: "customer"
  email: string | null
  name: string | null
  metadata: Record<string, string>
  created: number
  [field: string]: unknown
}

export interface StripeEvent {
  id: string
  object: "event"
  api_version: string
  created: number
  type: string
  data: { object: any; previous_attributes?: Record<string, unknown> }
  livemode: false
  pending_webhooks: number
  request: { id: string | null; idempotency_key: string | null }
}

export interface FakeStripeFault {
  delayMs?: number
  /** api_error: a 5xx; error: a refusal with `error`; hang: no answer ever; reset: the connection is destroyed */
  fail?: "api_error" | "error" | "hang" | "reset"
  /** The HTTP status of api_error (default 500) or error (default 400) */
  status?: number
  /** The refusal's Stripe error (type defaults to invalid_request_error) */
  error?: { type?: string; code?: string; decline_code?: string; message?: string; param?: string }
  /** How many of the next matching calls; absent = all of them */
  times?: number
  /** Execute the request first (effect done, answer saved under its idempotency key), then delay/fail the answer */
  afterEffect?: boolean
  intentId?: string
  /** Only calls for this payment collection (the intent's metadata.resource_id) */
  resourceId?: string
}

export type FakeStripeFaults = Partial<Record<StripeOperation, FakeStripeFault | FakeStripeFault[] | null>>

export interface FakeStripeCall {
  seq: number
  operation: StripeOperation
  method: string
  path: string
  /** The decoded form parameters as stripe-node sent them (strings) */
  params: Record<string, any> | null
  idempotency_key: string | null
  api_key: string | null
  stripe_version: string | null
  /** The intent (or customer, refund) the call was about, or created */
  object_id: string | null
  /** The payment collection (metadata.resource_id) */
  resource_id: string | null
  at: number
  /** The HTTP status sent; null when none was (hang, reset) or not yet */
  status: number | null
  /** ok, replayed, error:<code or type>, fault:<api_error|error|hang|reset>, in_flight */
  outcome: string
  replayed: boolean
}

export interface FakeStripeState {
  payment_intents: StripePaymentIntent[]
  customers: StripeCustomer[]
  charges: any[]
  refunds: any[]
  events: { id: string; type: string; created: number; object_id: string }[]
  search_lag_ms: number
  calls: Record<StripeOperation, number>
  inflight: Record<StripeOperation, number>
  max_inflight: Record<StripeOperation, number>
  faults: Partial<Record<StripeOperation, FakeStripeFault[]>>
  webhook_endpoints: any[]
}

export type ConfirmOutcome = "authorized" | "requires_action" | "processing" | "declined" | "authentication_failed"

export interface ConfirmAnswer {
  payment_intent: StripePaymentIntent
  /** What Stripe.js hands the storefront when the confirmation failed (declined, authentication failed) */
  error: { type: string; code: string; decline_code?: string; message: string } | null
}

export interface WebhookEndpointInput {
  url: string
  secret?: string
  enabled_events?: string[]
  delay_ms?: number
  /** Deliver each event a second time after the first answer */
  duplicate?: boolean
  /** Collect the events of this window and deliver them shuffled */
  shuffle_window_ms?: number
  max_attempts?: number
  retry_delay_ms?: number
}

export interface WebhookDelivery {
  seq: number
  event_id: string
  type: string
  object_id: string | null
  endpoint_id: string | null
  url: string
  attempt: number
  copy: number
  at: number
  status: number | null
  error: string | null
  body: string | null
}

function expectOk<T>(what: string, res: HttpResponse<T>): T {
  if (res.status < 200 || res.status >= 300) throw new Error(`fake Stripe: ${what} answered ${res.status}: ${res.text}`)
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

const http = () => createApi(testEnv().stripeUrl)

type StripeConstructor = new (key: string, config: Stripe.StripeConfig) => Stripe
let stripeNode: StripeConstructor | undefined
let webhooks: Stripe.Webhooks | undefined

/** The stripe-node module medusa-payment-stripe loads (its own dependency, resolved from its directory). */
export function stripeNodeModule(): StripeConstructor {
  if (!stripeNode) {
    const pluginDir = path.dirname(require.resolve("medusa-payment-stripe/package.json"))
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    stripeNode = require(require.resolve("stripe", { paths: [pluginDir] }))
  }
  return stripeNode!
}

export const fakeStripe = {
  get url(): string {
    return testEnv().stripeUrl
  },

  get apiKey(): string {
    return testEnv().stripeApiKey
  },

  get webhookSecret(): string {
    return testEnv().stripeWebhookSecret
  },

  /**
   * stripe-node pointed at the fake, configured as medusa-payment-stripe
   * configures it (apiVersion 2022-11-15), with `apiKey` unless given.
   */
  client(config: Partial<Stripe.StripeConfig> & { apiKey?: string } = {}): Stripe {
    const { apiKey = testEnv().stripeApiKey, ...rest } = config
    const { hostname, port } = new URL(testEnv().stripeUrl)
    const StripeNode = stripeNodeModule()
    return new StripeNode(apiKey, {
      apiVersion: "2022-11-15",
      ...rest,
      host: hostname,
      port,
      protocol: "http",
    } as Stripe.StripeConfig)
  },

  /** Forgets every object, event, fault, idempotency key, call and webhook endpoint. */
  async reset({ searchLagMs = 0 }: { searchLagMs?: number } = {}): Promise<void> {
    expectOk("POST /test/reset", await http().post("/test/reset", { search_lag_ms: searchLagMs }))
  },

  async state(): Promise<FakeStripeState> {
    return expectOk("GET /test/state", await http().get("/test/state"))
  },

  /** Intents (oldest first), optionally of a payment collection (metadata.resource_id), live ones (not canceled) only. */
  async paymentIntents(
    filter: { resourceId?: string | string[]; live?: boolean; customer?: string } = {}
  ): Promise<StripePaymentIntent[]> {
    const path = `/test/payment_intents${query({
      resource_id: filter.resourceId,
      live: filter.live ? "true" : undefined,
      customer: filter.customer,
    })}`
    return expectOk(`GET ${path}`, await http().get(path)).payment_intents
  },

  /** Intents Stripe still holds for the collection(s): not canceled. */
  liveIntents(resourceId?: string | string[]): Promise<StripePaymentIntent[]> {
    return fakeStripe.paymentIntents({ resourceId, live: true })
  },

  async paymentIntent(id: string): Promise<StripePaymentIntent> {
    const path = `/test/payment_intents/${encodeURIComponent(id)}`
    return expectOk(`GET ${path}`, await http().get(path)).payment_intent
  },

  async customers(): Promise<StripeCustomer[]> {
    return expectOk("GET /test/customers", await http().get("/test/customers")).customers
  },

  async history(filter: { operation?: StripeOperation; objectId?: string; resourceId?: string } = {}): Promise<FakeStripeCall[]> {
    const path = `/test/history${query({ operation: filter.operation, object_id: filter.objectId, resource_id: filter.resourceId })}`
    return expectOk(`GET ${path}`, await http().get(path)).history
  },

  /** Replaces the fault rules of each endpoint named; `null` clears an endpoint's rules. */
  async faults(rules: FakeStripeFaults): Promise<void> {
    expectOk("POST /test/faults", await http().post("/test/faults", rules))
  },

  /** Objects become searchable `ms` after they are created or changed (Stripe: usually under a minute). */
  async setSearchLag(ms: number): Promise<void> {
    expectOk("POST /test/config", await http().post("/test/config", { search_lag_ms: ms }))
  },

  /**
   * The shopper confirms the payment in the browser with the intent's client
   * secret (Stripe.js confirmPayment): authorized (requires_capture with manual
   * capture, else succeeded), requires_action (3-D Secure; confirm again to
   * complete it), processing (settle() later), declined or authentication_failed
   * (back to requires_payment_method, with `error` as Stripe.js reports it).
   */
  async confirm(clientSecret: string, outcome: ConfirmOutcome = "authorized"): Promise<ConfirmAnswer> {
    return expectOk("POST /test/confirm", await http().post("/test/confirm", { client_secret: clientSecret, outcome }))
  },

  /** The shopper confirms the intent a payment session holds (its data is the intent: `client_secret`). */
  confirmSession(session: { data: Record<string, unknown> | null }, outcome: ConfirmOutcome = "authorized"): Promise<ConfirmAnswer> {
    const secret = session.data?.client_secret
    if (typeof secret !== "string") throw new Error(`session holds no client_secret: ${JSON.stringify(session.data)}`)
    return fakeStripe.confirm(secret, outcome)
  },

  /** A processing payment (SEPA-like) settles: succeeded (or requires_capture) or failed. */
  async settle(intentId: string, outcome: "succeeded" | "failed"): Promise<StripePaymentIntent> {
    const path = `/test/payment_intents/${encodeURIComponent(intentId)}/settle`
    return expectOk(`POST ${path}`, await http().post(path, { outcome })).payment_intent
  },

  /** The events the account generated (and built), oldest first. */
  async events(filter: { type?: string; objectId?: string } = {}): Promise<StripeEvent[]> {
    const path = `/test/events${query({ type: filter.type, object_id: filter.objectId })}`
    return expectOk(`GET ${path}`, await http().get(path)).events
  },

  /** An event of `type` with the intent's current state as data.object (fields of `object` replace it). */
  async buildEvent(type: string, intentId: string, object?: Record<string, unknown>): Promise<StripeEvent> {
    return expectOk("POST /test/events", await http().post("/test/events", { type, payment_intent: intentId, object })).event
  },

  /** The `Stripe-Signature` header for `payload`, written by stripe-node's own webhooks.generateTestHeaderString. */
  signatureHeader(payload: string, secret: string = testEnv().stripeWebhookSecret, timestamp?: number): string {
    // A client's `webhooks` signs locally; no request is made.
    webhooks ??= new (stripeNodeModule())("sk_test_signing_only", { apiVersion: "2022-11-15" }).webhooks
    return webhooks.generateTestHeaderString({ payload, secret, ...(timestamp ? { timestamp } : {}) })
  },

  /**
   * POSTs the event to a backend's webhook route (medusa-payment-stripe's
   * POST /stripe/hooks), signed with the endpoint secret as Stripe signs it.
   */
  async sendWebhook(
    backendUrl: string,
    event: StripeEvent,
    { secret = testEnv().stripeWebhookSecret, signature }: { secret?: string; signature?: string } = {}
  ): Promise<{ status: number; text: string }> {
    const payload = JSON.stringify(event, null, 2)
    const res = await fetch(`${backendUrl}/stripe/hooks`, {
      method: "POST",
      headers: { "content-type": "application/json", "stripe-signature": signature ?? fakeStripe.signatureHeader(payload, secret) },
      body: payload,
      signal: AbortSignal.timeout(30_000),
    })
    return { status: res.status, text: await res.text() }
  },

  /** The fake itself delivers an event it holds to `url`, signed with `secret` (its own HMAC, Stripe's scheme). */
  async deliver(eventId: string, url: string, secret: string = testEnv().stripeWebhookSecret): Promise<{ status: number | null; body: string | null; error: string | null }> {
    const path = `/test/events/${encodeURIComponent(eventId)}/deliver`
    return expectOk(`POST ${path}`, await http().post(path, { url, secret }))
  },

  /** From now on the fake delivers the events it generates to `url` (a backend's /stripe/hooks), as Stripe would. */
  async addWebhookEndpoint(input: WebhookEndpointInput): Promise<{ id: string }> {
    return expectOk(
      "POST /test/webhook_endpoints",
      await http().post("/test/webhook_endpoints", { secret: testEnv().stripeWebhookSecret, ...input })
    ).webhook_endpoint
  },

  async removeWebhookEndpoint(id: string): Promise<void> {
    expectOk("DELETE /test/webhook_endpoints/:id", await http().delete(`/test/webhook_endpoints/${encodeURIComponent(id)}`))
  },

  async deliveries(filter: { eventId?: string; endpointId?: string } = {}): Promise<WebhookDelivery[]> {
    const path = `/test/webhook_deliveries${query({ event_id: filter.eventId, endpoint_id: filter.endpointId })}`
    return expectOk(`GET ${path}`, await http().get(path)).deliveries
  },
}
