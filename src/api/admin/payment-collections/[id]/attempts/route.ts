import type { MedusaRequest, MedusaResponse } from "@medusajs/medusa"
import type PaymentAttemptsService from "../../../../../services/payment-attempts"
import { validateQuery } from "../../../../../lib/validate-body"
import { AdminGetPaymentCollectionAttemptsParams } from "../../validators"

/** The attempt log of one payment collection: every provider call, newest first. */
export const GET = async (req: MedusaRequest, res: MedusaResponse) => {
  const { limit, offset } = await validateQuery(AdminGetPaymentCollectionAttemptsParams, req.query)
  const service: PaymentAttemptsService = req.scope.resolve("paymentAttemptsService")
  res.status(200).json(await service.listForCollection(req.params.id, { limit, offset }))
}
