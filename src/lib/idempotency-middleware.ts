import type { MedusaRequest } from "@medusajs/medusa"
import type { NextFunction, Response } from "express"
import { MedusaError } from "medusa-core-utils"
import type PaymentCollectionIdempotencyService from "../services/payment-collection-idempotency"
import { MAX_IDEMPOTENCY_KEY_LENGTH } from "../services/payment-collection-idempotency"

export const IDEMPOTENCY_KEY_HEADER = "idempotency-key"
export const IDEMPOTENT_REPLAYED_HEADER = "idempotent-replayed"

/**
 * Honours an `Idempotency-Key` header: replays the stored answer of the same
 * request, or claims the key and stores this request's answer before it is
 * sent (so a client that retries after seeing it always gets the replay).
 * Answers that a retry should re-run — 409 and 5xx — are not stored.
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

    const service: PaymentCollectionIdempotencyService = req.scope.resolve(
      "paymentCollectionIdempotencyService"
    )
    let claim
    try {
      claim = await service.claim({
        key,
        method: req.method,
        path: req.originalUrl.split("?")[0],
        body: req.body,
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
    const send = res.json.bind(res)
    res.json = (body: unknown) => {
      const status = res.statusCode
      const settle =
        status >= 500 || status === 409
          ? service.release(keyId)
          : service.complete(keyId, { status, body })
      settle
        .catch((err: Error) =>
          req.scope
            .resolve<{ error: (m: string) => void }>("logger")
            .error(`Could not store the answer for Idempotency-Key ${key}: ${err.message}`)
        )
        .finally(() => send(body))
      return res
    }
    next()
  }
}
