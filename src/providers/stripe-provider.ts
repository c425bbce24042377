import type { FinderQuery, FinderResult, FinderWindow, FoundSession, SessionFinder } from "./finders"

/**
 * What the plugin knows of medusa-payment-stripe's providers (stripe,
 * stripe-blik, …): they extend its StripeBase, which exposes its client as
 * `getStripe()`. The plugin uses that client only to read: to find a
 * collection's payment intents, and to read an intent's status before a
 * session is removed. It calls no method that changes anything at Stripe.
 */

type Intent = {
  id: string
  object?: string
  status?: string
  created?: number
  metadata?: Record<string, string> | null
} & Record<string, unknown>

type Page = { data: Intent[]; has_more: boolean; next_page?: string | null }

export type StripeLike = {
  paymentIntents: {
    retrieve(id: string): Promise<Intent>
    list(params: Record<string, unknown>): Promise<Page>
    search(params: Record<string, unknown>): Promise<Page>
  }
}

/** Pages of 100 intents read by one finder call, at the most. */
const MAX_LIST_PAGES = 20
const MAX_SEARCH_PAGES = 5
/** How far Stripe's search index may lag: its documentation says up to an hour during outages. */
const SEARCH_LAG_MS = 60 * 60_000

export function stripeClientOf(provider: unknown): StripeLike | null {
  const getStripe = (provider as { getStripe?: unknown } | null)?.getStripe
  if (typeof getStripe !== "function") {
    return null
  }
  const client = getStripe.call(provider) as Partial<StripeLike> | undefined
  const intents = client?.paymentIntents
  return intents && typeof intents.list === "function" && typeof intents.retrieve === "function"
    ? (client as StripeLike)
    : null
}

/**
 * The collection's intents created within the window. The list endpoint is
 * consistent, so a window listed to its end is a conclusion; it is read newest
 * first, a page at a time, keeping the intents whose metadata names the
 * collection. Search finds them by metadata directly but lags behind (it is
 * eventually consistent, and not offered to every account): it is asked too,
 * and when the list could not be read to the end (a very busy account), its
 * answer is a conclusion only for a window older than its lag.
 */
export function stripeFinder(stripe: StripeLike): SessionFinder {
  return async (query: FinderQuery): Promise<FinderResult> => {
    const found = new Map<string, FoundSession>()
    const keep = (intent: Intent) => {
      if (intent.metadata?.resource_id === query.resource_id && inWindow(intent, query)) {
        found.set(intent.id, { id: intent.id, data: intent })
      }
    }
    const searched = await searchIntents(stripe, query, keep)
    const listed = await listIntents(stripe, query, keep)
    const searchSettled = searched && Date.now() - query.created_to.getTime() > SEARCH_LAG_MS
    return { sessions: [...found.values()], complete: listed || searchSettled }
  }
}

function inWindow(intent: Intent, query: FinderQuery): boolean {
  if (typeof intent.created !== "number") {
    return true
  }
  // Stripe's `created` has whole seconds.
  const created = intent.created * 1000
  return created >= Math.floor(query.created_from.getTime() / 1000) * 1000 && created <= query.created_to.getTime()
}

/** Whether the window was listed to its end. */
async function listIntents(stripe: StripeLike, query: FinderQuery, keep: (intent: Intent) => void): Promise<boolean> {
  const created = {
    gte: Math.floor(query.created_from.getTime() / 1000),
    lte: Math.ceil(query.created_to.getTime() / 1000),
  }
  let startingAfter: string | undefined
  for (let page = 0; page < MAX_LIST_PAGES; page++) {
    const result = await stripe.paymentIntents.list({
      created,
      limit: 100,
      ...(startingAfter ? { starting_after: startingAfter } : {}),
    })
    result.data.forEach(keep)
    if (!result.has_more || !result.data.length) {
      return true
    }
    startingAfter = result.data[result.data.length - 1].id
  }
  return false
}

/** Whether the search answered to its last page (false: it failed or is not offered). */
async function searchIntents(stripe: StripeLike, query: FinderQuery, keep: (intent: Intent) => void): Promise<boolean> {
  // The id is Medusa's (`paycol_` and base32): nothing in it needs quoting.
  const clause = `metadata['resource_id']:'${query.resource_id.replace(/[^A-Za-z0-9_]/g, "")}'`
  let page: string | undefined
  try {
    for (let n = 0; n < MAX_SEARCH_PAGES; n++) {
      const result = await stripe.paymentIntents.search({ query: clause, limit: 100, ...(page ? { page } : {}) })
      result.data.forEach(keep)
      if (!result.has_more || !result.next_page) {
        return true
      }
      page = result.next_page
    }
    return false
  } catch {
    return false
  }
}

/**
 * An intent's state as the plugin decides on it: `authorized` once the
 * shopper's confirmation put a hold on the card (requires_capture),
 * `captured` once the money is taken (succeeded: automatic capture, or a
 * capture made at Stripe), `processing` while a confirmed payment is settling
 * (SEPA and other delayed methods: it cannot be canceled), else Stripe's
 * status as medusa-payment-stripe maps it.
 */
export async function stripeSessionState(stripe: StripeLike, data: Record<string, unknown>): Promise<string> {
  const intent = await stripe.paymentIntents.retrieve(String(data.id)).catch((err: { code?: string }) => {
    // Nothing of it is left at Stripe: nothing to remove, nothing held.
    if (err?.code === "resource_missing") {
      return { id: String(data.id), status: "canceled" } as Intent
    }
    throw err
  })
  switch (intent.status) {
    case "requires_capture":
      return "authorized"
    case "succeeded":
      return "captured"
    case "processing":
      return "processing"
    case "canceled":
      return "canceled"
    case "requires_action":
      return "requires_more"
    default:
      return "pending"
  }
}

/**
 * Where an intent stripe-node created without answering it may be, next to
 * the intent `data` it answered after `latencyMs`. With maxNetworkRetries 0
 * (medusa-payment-stripe's setting) stripe-node still sends a request again,
 * once, when its connection was reset on the first try — and without an
 * Idempotency-Key, so a create Stripe acted on before the reset is made twice
 * and only the second one is answered. The first one was created within the
 * call, so no earlier than the answered one less the call's length, by
 * Stripe's own clock (`created`, whole seconds). Null without `created`.
 */
export function stripeResendWindow(data: Record<string, unknown>, latencyMs: number): FinderWindow | null {
  if (typeof data.created !== "number") {
    return null
  }
  const created = data.created * 1000
  return { created_from: new Date(created - latencyMs - 1000), created_to: new Date(created + 999) }
}
