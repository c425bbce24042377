import { isAuthorized, ExistingSession } from "./session-plan"

export type CollectionStatus = "not_paid" | "awaiting" | "partially_authorized" | "authorized" | "canceled"

/** How far a collection's payment got, for comparing statuses (canceled stands apart). */
const PROGRESS = ["not_paid", "awaiting", "partially_authorized", "authorized"]

/** Core's collection statuses after an authorization attempt. */
export function statusForAuthorizedAmount(
  authorized: number,
  amount: number
): "awaiting" | "partially_authorized" | "authorized" {
  if (authorized <= 0) {
    return "awaiting"
  }
  return authorized < amount ? "partially_authorized" : "authorized"
}

/** What the collection's authorized sessions add up to. */
export function authorizedAmountOf(sessions: ExistingSession[]): number {
  return sessions.filter(isAuthorized).reduce((sum, s) => sum + (s.amount ?? 0), 0)
}

/**
 * A collection's status and authorized amount, computed from its sessions. A
 * canceled collection stays canceled; one with nothing to pay is authorized
 * (as core's authorizePaymentSessions decides).
 */
export function authorizationStatusOf(
  collection: { status: string; amount: number },
  sessions: ExistingSession[]
): { status: string; authorizedAmount: number } {
  const authorizedAmount = authorizedAmountOf(sessions)
  if (collection.status === "canceled") {
    return { status: collection.status, authorizedAmount }
  }
  if (collection.amount <= 0) {
    return { status: "authorized", authorizedAmount }
  }
  return { status: statusForAuthorizedAmount(authorizedAmount, collection.amount), authorizedAmount }
}

/**
 * A status and amount that only ever rise from `current`: what an adoption
 * (an authorization recorded after its request) may write. An admin's
 * `authorized` (POST /admin/payment-collections/:id/authorize) stays, whatever
 * the sessions add up to.
 */
export function raisedStatus(
  current: { status: string; authorized_amount: number | null },
  computed: { status: string; authorizedAmount: number }
): { status: string; authorizedAmount: number } {
  const authorizedAmount = Math.max(current.authorized_amount ?? 0, computed.authorizedAmount)
  if (current.status === "canceled" || PROGRESS.indexOf(current.status) >= PROGRESS.indexOf(computed.status)) {
    return { status: current.status, authorizedAmount }
  }
  return { status: computed.status, authorizedAmount }
}

/**
 * The amount a payment may be recorded for: never more than the session's,
 * nor than what the provider says it authorized where its data says it (a
 * Stripe intent's `amount_capturable`, else its `amount`).
 */
export function authorizedPaymentAmount(sessionAmount: number, providerData: Record<string, unknown>): number {
  const capturable = providerData.amount_capturable
  const amount = providerData.amount
  const held =
    typeof capturable === "number" && capturable > 0 ? capturable : typeof amount === "number" ? amount : sessionAmount
  return Math.min(sessionAmount, held)
}
