import type { MedusaRequest, MedusaResponse, PaymentCollectionService } from "@medusajs/medusa"

/**
 * Get a PaymentCollection. `fields` and `expand` are parsed by core's
 * transformStoreQuery (see api/middlewares.ts) into `retrieveConfig`.
 */
export const GET = async (req: MedusaRequest, res: MedusaResponse) => {
  const paymentCollectionService: PaymentCollectionService = req.scope.resolve(
    "paymentCollectionService"
  )
  const payment_collection = await paymentCollectionService.retrieve(
    req.params.id,
    req.retrieveConfig as never
  )
  res.status(200).json({ payment_collection })
}
