import type { MedusaRequest } from "@medusajs/medusa"
import type { NextFunction, Response } from "express"
import { MedusaError } from "medusa-core-utils"
import type PaymentCollectionIdempotencyService from "../../services/payment-collection-idempotency"
import type { IdempotencyClaim } from "../../services/payment-collection-session"
import { MAX_IDEMPOTENCY_KEY_LENGTH } from "../../services/payment-collection-idempotency"

export const IDEMPOTENCY_KEY_HEADER = "idempotency-key"
export const IDEMPOTENT_REPLAYED_HEADER = "idempotent-replayed"

type Logger = { error: (m: string) => void }

/**
 * Honours an `Idempotency-Key` header: replays the stored answer of the same
 * request, or claims the key; the request's answer is stored with the rows it
 * answers, in their transaction (so a retry after a crash past the commit
 * replays it), or — decided before any commit — here, before it is sent (so a
 * client that retries after seeing it always gets the replay).
 * Runs after the body was validated: a request refused for its shape never
 * claims a key (Stripe's rule). Answers that a retry should re-run — 409 and
 * 5xx — are not stored.
 */
export function idempotency() {
  return async (req: MedusaRequest, res: Response, next: NextFunction) => {
    const key = req.get(IDEMPOTENCY_KEY_HEADER)
    if (key === undefined) {
      return next()
    }
    if (!key.trim() || key.length > MAX_IDEMPOTENCY_KEY_LENGTH) {
      return next(
        new MedusaError(
          MedusaError.Types.INVALID_DATA,
          `The Idempotency-Key header must be 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} characters`
        )
      )
    }

    let service: PaymentCollectionIdempotencyService
    let claim
    try {
      service = req.scope.resolve("paymentCollectionIdempotencyService")
      claim = await service.claim({
        key,
        method: req.method,
        path: req.originalUrl.split("?")[0],
        body: req.body,
        collectionId: req.params?.id,
      })
    } catch (err) {
      return next(err)
    }

    if (claim.kind === "replay") {
      res.setHeader(IDEMPOTENT_REPLAYED_HEADER, "true")
      res.status(claim.response.status).json(claim.response.body)
      return
    }

    const keyId = claim.id
    // The services store the answer with the rows it answers when they commit
    // (claim.settled); an answer decided otherwise is stored here before it is sent.
    const owned: IdempotencyClaim = { keyId, settled: false }
    ;(req as MedusaRequest & { idempotencyClaim?: IdempotencyClaim }).idempotencyClaim = owned
    const logError = (message: string) => {
      try {
        req.scope.resolve<Logger>("logger").error(message)
      } catch {
        // Nowhere left to report to; the request itself is unaffected.
      }
    }
    const send = res.json.bind(res)
    res.json = (body: unknown) => {
      const status = res.statusCode
      const settle = owned.settled
        ? Promise.resolve()
        : status >= 500 || status === 409
          ? service.release(keyId)
          : service.complete(keyId, { status, body })
      // Whatever happens to the key or to the connection, nothing here may reject unhandled.
      settle
        .catch((err: Error) => logError(`Could not store the answer for Idempotency-Key ${key}: ${err.message}`))
        .then(() => {
          try {
            send(body)
          } catch (err) {
            logError(`Could not send the answer for Idempotency-Key ${key}: ${(err as Error).message}`)
          }
        })
      return res
    }
    next()
  }
}
