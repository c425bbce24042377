import type { MedusaRequest, MedusaResponse, PaymentCollectionService } from "@medusajs/medusa"
import { MedusaError } from "medusa-core-utils"
import { isUnknownFieldOrRelation } from "../../../../lib/errors"
import { sessionServiceOf } from "../../../../lib/request-context"

/**
 * Get a PaymentCollection. Without query parameters the plugin reads core's
 * default fields and relations itself; with `fields`/`expand` (parsed by core's
 * transformStoreQuery, see api/middlewares.ts) core's service answers.
 */
export const GET = async (req: MedusaRequest, res: MedusaResponse) => {
  if (!req.retrieveConfig) {
    const payment_collection = await sessionServiceOf(req).retrieveWithDefaults(
      req.params.id
    )
    res.status(200).json({ payment_collection })
    return
  }
  const relations = (req.retrieveConfig as { relations?: string[] }).relations ?? []
  if (relations.some((relation) => relation === "attempts" || relation.startsWith("attempts."))) {
    // The attempt journal is the merchant's (GET /admin/payment-collections/:id/attempts), not the shopper's.
    throw new MedusaError(MedusaError.Types.INVALID_DATA, "Invalid fields or expand: attempts cannot be expanded here")
  }
  const paymentCollectionService: PaymentCollectionService = req.scope.resolve(
    "paymentCollectionService"
  )
  const payment_collection = await paymentCollectionService
    .retrieve(req.params.id, req.retrieveConfig as never)
    .catch((err: unknown) => {
      if (isUnknownFieldOrRelation(err)) {
        throw new MedusaError(
          MedusaError.Types.INVALID_DATA,
          `Invalid fields or expand: ${(err as Error).message}`
        )
      }
      throw err
    })
  res.status(200).json({ payment_collection })
}
