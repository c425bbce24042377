import type { MedusaRequest, MedusaResponse } from "@medusajs/medusa"
import type OrderPaymentCollectionsService from "../../../../../services/order-payment-collections"

/**
 * The payment collections of an order's edits, with their sessions, payments
 * and the first page of each attempt log: what the admin's order widget shows.
 */
export const GET = async (req: MedusaRequest, res: MedusaResponse) => {
  const service: OrderPaymentCollectionsService = req.scope.resolve(
    "orderPaymentCollectionsService"
  )
  res.status(200).json({ payment_collections: await service.listForOrder(req.params.id) })
}
