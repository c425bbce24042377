import type { MedusaRequest, MedusaResponse } from "@medusajs/medusa"
import { authorizationServiceOf, requestContextOf, requestInfoOf } from "../../../../../../http/request-context"
import { validatedBodyOf } from "../../../../../../http/validate-body"
import { StorePostPaymentCollectionsBatchSessionsAuthorizeReq } from "../../../../validators"

/** Authorize Payment Sessions. */
export const POST = async (req: MedusaRequest, res: MedusaResponse) => {
  const body = await validatedBodyOf(req, StorePostPaymentCollectionsBatchSessionsAuthorizeReq)
  const answer = await authorizationServiceOf(req).authorizeSessions(
    req.params.id,
    body.session_ids,
    requestContextOf(req),
    requestInfoOf(req)
  )
  res.status(200).json(answer)
}
