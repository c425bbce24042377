import type { MedusaRequest, MedusaResponse } from "@medusajs/medusa"
import type PaymentCollectionAdminService from "../../../../../services/payment-collection-admin"

/** Mark a payment collection authorized (core's contract), under the collection's lock. */
export const POST = async (req: MedusaRequest, res: MedusaResponse) => {
  const service: PaymentCollectionAdminService = req.scope.resolve("paymentCollectionAdminService")
  res.status(200).json(await service.markAsAuthorized(req.params.id))
}
