import type { MedusaRequest, MedusaResponse } from "@medusajs/medusa"
import { requestInfoOf, sessionServiceOf } from "../../../../../http/request-context"
import { validatedBodyOf } from "../../../../../http/validate-body"
import { StorePostPaymentCollectionsBatchSessionsReq } from "../../../validators"

/** Manage Payment Sessions: the collection holds exactly the listed sessions. */
export const POST = async (req: MedusaRequest, res: MedusaResponse) => {
  const body = await validatedBodyOf(req, StorePostPaymentCollectionsBatchSessionsReq)
  const answer = await sessionServiceOf(req).setSessionsBatch(
    req.params.id,
    body.sessions,
    requestInfoOf(req)
  )
  res.status(200).json(answer)
}
