import type { MedusaRequest, MedusaResponse } from "@medusajs/medusa"
import { MedusaError } from "medusa-core-utils"
import { requestContextOf, sessionServiceOf } from "../../../../../../../lib/request-context"
import { validateBody } from "../../../../../../../lib/validate-body"
import { StorePostPaymentCollectionsBatchSessionsAuthorizeReq } from "../../../../validators"

/** Authorize Payment Sessions. */
export const POST = async (req: MedusaRequest, res: MedusaResponse) => {
  const body = await validateBody(
    StorePostPaymentCollectionsBatchSessionsAuthorizeReq,
    req.body
  )
  const { collection, refused } = await sessionServiceOf(req).authorizeSessions(
    req.params.id,
    body.session_ids,
    requestContextOf(req)
  )
  if (refused.length) {
    throw new MedusaError(
      MedusaError.Types.PAYMENT_AUTHORIZATION_ERROR,
      `The payment provider refused to authorize payment session ${refused.join(", ")}`
    )
  }
  res.status(200).json({ payment_collection: collection })
}
