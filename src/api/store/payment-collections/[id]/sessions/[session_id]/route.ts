import type { MedusaRequest, MedusaResponse } from "@medusajs/medusa"
import { requestInfoOf, sessionServiceOf } from "../../../../../http/request-context"

/** Refresh a Payment Session: a new provider session replaces it. */
export const POST = async (req: MedusaRequest, res: MedusaResponse) => {
  const answer = await sessionServiceOf(req).refreshSession(
    req.params.id,
    req.params.session_id,
    requestInfoOf(req)
  )
  res.status(200).json(answer)
}
