import type { MedusaRequest, MedusaResponse } from "@medusajs/medusa"
import type PaymentCollectionAdminService from "../../../../services/payment-collection-admin"

/** Delete a payment collection (core's contract), under the collection's lock. */
export const DELETE = async (req: MedusaRequest, res: MedusaResponse) => {
  const service: PaymentCollectionAdminService = req.scope.resolve("paymentCollectionAdminService")
  res.status(200).json(await service.delete(req.params.id))
}
