import type { SessionFinder } from "./finders"

/**
 * medusa-payment-manual's provider (`manual`): its sessions live only in
 * Medusa's database — initiatePayment answers `{ status: "pending" }` and
 * nothing is created anywhere else — so a call that may have created one
 * leaves nothing behind to find: its finder always answers a complete, empty
 * list.
 */
export function manualFinder(provider: unknown): SessionFinder | null {
  const type = (provider as { constructor?: { name?: string; identifier?: string } } | null)?.constructor
  return type?.name === "ManualPaymentService" && type.identifier === "manual"
    ? async () => ({ sessions: [], complete: true })
    : null
}
