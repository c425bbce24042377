import type { MedusaRequest, MedusaResponse } from "@medusajs/medusa"
import { MedusaError } from "medusa-core-utils"
import { authorizationServiceOf, requestContextOf, requestInfoOf } from "../../../../../../../lib/request-context"
import { validatedBodyOf } from "../../../../../../../lib/validate-body"
import { StorePostPaymentCollectionsBatchSessionsAuthorizeReq } from "../../../../validators"

/**
 * Authorize Payment Sessions. What was authorized is kept whatever else
 * failed; a provider that crashed or did not answer is named in the error.
 */
export const POST = async (req: MedusaRequest, res: MedusaResponse) => {
  const body = await validatedBodyOf(req, StorePostPaymentCollectionsBatchSessionsAuthorizeReq)
  const { collection, refused, unavailable } = await authorizationServiceOf(req).authorizeSessions(
    req.params.id,
    body.session_ids,
    requestContextOf(req),
    requestInfoOf(req)
  )
  if (unavailable) {
    throw unavailable
  }
  if (refused.length) {
    throw new MedusaError(
      MedusaError.Types.PAYMENT_AUTHORIZATION_ERROR,
      `The payment provider refused to authorize payment session ${refused.join(", ")}`
    )
  }
  res.status(200).json({ payment_collection: collection })
}
