import type { MedusaRequest } from "@medusajs/medusa"
import type PaymentCollectionAuthorizationService from "../../services/payment-collection-authorization"
import type PaymentCollectionSessionService from "../../services/payment-collection-session"
import type { IdempotencyClaim, RequestInfo } from "../../services/payment-collection-session"
import { IDEMPOTENCY_KEY_HEADER } from "./idempotency-middleware"

/** The logged-in customer, when the storefront sent one (optional auth). */
export function customerIdOf(req: MedusaRequest): string | undefined {
  const user = (req as MedusaRequest & { user?: { customer_id?: string } }).user
  return user?.customer_id
}

/** Who asks: the customer, and what the attempt journal records of the request. */
export function requestInfoOf(req: MedusaRequest): RequestInfo {
  const requestId = (req as MedusaRequest & { requestId?: unknown }).requestId
  return {
    customerId: customerIdOf(req),
    requestId: requestId === undefined ? undefined : String(requestId),
    idempotencyKey: req.get(IDEMPOTENCY_KEY_HEADER),
    idempotencyClaim: (req as MedusaRequest & { idempotencyClaim?: IdempotencyClaim }).idempotencyClaim,
  }
}

export function sessionServiceOf(req: MedusaRequest): PaymentCollectionSessionService {
  return req.scope.resolve("paymentCollectionSessionService")
}

export function authorizationServiceOf(req: MedusaRequest): PaymentCollectionAuthorizationService {
  return req.scope.resolve("paymentCollectionAuthorizationService")
}

/** Medusa's `request_context` (ip, user agent), passed to providers on authorize. */
export function requestContextOf(req: MedusaRequest): Record<string, unknown> {
  return (
    (req as MedusaRequest & { request_context?: Record<string, unknown> })
      .request_context ?? {}
  )
}
