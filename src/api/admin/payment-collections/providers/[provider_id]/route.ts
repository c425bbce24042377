import type { MedusaRequest, MedusaResponse } from "@medusajs/medusa"
import { validateBody } from "../../../../http/validate-body"
import type PaymentCollectionProviderService from "../../../../../services/payment-collection-provider"
import { AdminPostPaymentCollectionProviderReq } from "../../validators"

/** Switches a provider on or off for payment collections. */
export const POST = async (req: MedusaRequest, res: MedusaResponse) => {
  const body = await validateBody(AdminPostPaymentCollectionProviderReq, req.body)
  const service: PaymentCollectionProviderService = req.scope.resolve(
    "paymentCollectionProviderService"
  )
  const provider = await service.setEnabled(req.params.provider_id, body.is_enabled)
  res.status(200).json({ provider })
}
