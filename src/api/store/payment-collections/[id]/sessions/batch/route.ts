import type { MedusaRequest, MedusaResponse } from "@medusajs/medusa"
import { customerIdOf, sessionServiceOf } from "../../../../../../lib/request-context"
import { validateBody } from "../../../../../../lib/validate-body"
import { StorePostPaymentCollectionsBatchSessionsReq } from "../../../validators"

/** Manage Payment Sessions: the collection holds exactly the listed sessions. */
export const POST = async (req: MedusaRequest, res: MedusaResponse) => {
  const body = await validateBody(
    StorePostPaymentCollectionsBatchSessionsReq,
    req.body
  )
  const payment_collection = await sessionServiceOf(req).setSessionsBatch(
    req.params.id,
    body.sessions,
    customerIdOf(req)
  )
  res.status(200).json({ payment_collection })
}
