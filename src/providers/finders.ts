/**
 * Provider finders: an optional capability of a payment provider, used to
 * settle a call that may have created something at the provider without
 * telling the plugin its id (a kill or a connection reset while an initiate or
 * an update was in flight). A provider offers it by having this method:
 *
 *   findPaymentSessions(query: { resource_id: string; created_from: Date; created_to: Date })
 *     : Promise<{ sessions: { id: string; data: Record<string, unknown> }[]; complete: boolean }>
 *
 * It lists the provider's sessions of that resource (the payment collection id
 * the plugin passed as `resource_id`) created within the window, whatever their
 * status, each with `data` as initiatePayment answers it (what deletePayment
 * takes); a session whose `data.status` is "canceled" holds nothing.
 * `complete: false` says some may not be visible yet (an eventually consistent
 * index): the plugin asks again later. Providers of medusa-payment-stripe and
 * medusa-payment-manual get a built-in finder (stripe-provider.ts,
 * manual-provider.ts).
 */
import { manualFinder } from "./manual-provider"
import { stripeClientOf, stripeFinder } from "./stripe-provider"

export type FoundSession = { id: string; data: Record<string, unknown> }
export type FinderResult = { sessions: FoundSession[]; complete: boolean }
export type FinderWindow = { created_from: Date; created_to: Date }
export type FinderQuery = { resource_id: string } & FinderWindow
export type SessionFinder = (query: FinderQuery) => Promise<FinderResult>

type WithFinder = { findPaymentSessions: SessionFinder }

function hasOwnFinder(provider: unknown): provider is WithFinder {
  return !!provider && typeof (provider as Partial<WithFinder>).findPaymentSessions === "function"
}

/**
 * The provider's finder: its own, else a built-in one (medusa-payment-stripe's
 * providers, medusa-payment-manual's); null when it has none.
 */
export function finderOf(provider: unknown): SessionFinder | null {
  if (hasOwnFinder(provider)) {
    return (query) => provider.findPaymentSessions(query)
  }
  const stripe = stripeClientOf(provider)
  return stripe ? stripeFinder(stripe) : manualFinder(provider)
}

/** Whether a found session still holds anything at its provider. */
export function isLive(session: FoundSession): boolean {
  return session.data?.status !== "canceled"
}
