import type { MedusaRequest, MedusaResponse, PaymentCollectionService } from "@medusajs/medusa"
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
  const paymentCollectionService: PaymentCollectionService = req.scope.resolve(
    "paymentCollectionService"
  )
  const payment_collection = await paymentCollectionService.retrieve(
    req.params.id,
    req.retrieveConfig as never
  )
  res.status(200).json({ payment_collection })
}
