import type { MedusaRequest, MedusaResponse } from "@medusajs/medusa"
import { requestInfoOf, sessionServiceOf } from "../../../../http/request-context"
import { validatedBodyOf } from "../../../../http/validate-body"
import { StorePaymentCollectionSessionsReq } from "../../validators"

/** Create a Payment Session. */
export const POST = async (req: MedusaRequest, res: MedusaResponse) => {
  const body = await validatedBodyOf(req, StorePaymentCollectionSessionsReq)
  const answer = await sessionServiceOf(req).setSession(
    req.params.id,
    body.provider_id,
    requestInfoOf(req)
  )
  res.status(200).json(answer)
}
