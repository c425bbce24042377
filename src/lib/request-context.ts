import type { MedusaRequest } from "@medusajs/medusa"
import type PaymentCollectionSessionService from "../services/payment-collection-session"

/** The logged-in customer, when the storefront sent one (optional auth). */
export function customerIdOf(req: MedusaRequest): string | undefined {
  const user = (req as MedusaRequest & { user?: { customer_id?: string } }).user
  return user?.customer_id
}

export function sessionServiceOf(
  req: MedusaRequest
): PaymentCollectionSessionService {
  return req.scope.resolve("paymentCollectionSessionService")
}

/** Medusa's `request_context` (ip, user agent), passed to providers on authorize. */
export function requestContextOf(req: MedusaRequest): Record<string, unknown> {
  return (
    (req as MedusaRequest & { request_context?: Record<string, unknown> })
      .request_context ?? {}
  )
}
