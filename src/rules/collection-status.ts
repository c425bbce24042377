import { isAuthorized, ExistingSession } from "./session-plan"

export type CollectionStatus = "not_paid" | "awaiting" | "partially_authorized" | "authorized" | "canceled"

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
