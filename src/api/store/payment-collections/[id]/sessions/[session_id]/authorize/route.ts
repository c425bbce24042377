import type { MedusaRequest, MedusaResponse } from "@medusajs/medusa"
import { authorizationServiceOf, requestContextOf, requestInfoOf } from "../../../../../../http/request-context"

/** Authorize Payment Session. */
export const POST = async (req: MedusaRequest, res: MedusaResponse) => {
  const answer = await authorizationServiceOf(req).authorizeSession(
    req.params.id,
    req.params.session_id,
    requestContextOf(req),
    requestInfoOf(req)
  )
  res.status(200).json(answer)
}
