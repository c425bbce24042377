import type { MedusaRequest, MedusaResponse } from "@medusajs/medusa"
import { customerIdOf, sessionServiceOf } from "../../../../../lib/request-context"
import { validateBody } from "../../../../../lib/validate-body"
import { StorePaymentCollectionSessionsReq } from "../../validators"

/** Create a Payment Session. */
export const POST = async (req: MedusaRequest, res: MedusaResponse) => {
  const body = await validateBody(StorePaymentCollectionSessionsReq, req.body)
  const payment_collection = await sessionServiceOf(req).setSession(
    req.params.id,
    body.provider_id,
    customerIdOf(req)
  )
  res.status(200).json({ payment_collection })
}
