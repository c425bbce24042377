import type { MedusaRequest, MedusaResponse } from "@medusajs/medusa"
import type PaymentCollectionProviderService from "../../../../services/payment-collection-provider"

/** Every installed payment provider and whether payment collections may use it. */
export const GET = async (req: MedusaRequest, res: MedusaResponse) => {
  const service: PaymentCollectionProviderService = req.scope.resolve(
    "paymentCollectionProviderService"
  )
  res.status(200).json({ providers: await service.list() })
}
