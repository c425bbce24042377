import type { MedusaRequest, MedusaResponse } from "@medusajs/medusa"
import { MedusaError } from "medusa-core-utils"
import { authorizationServiceOf, requestContextOf, requestInfoOf } from "../../../../../../../lib/request-context"

/** Authorize Payment Session: 422 when the provider does not authorize it. */
export const POST = async (req: MedusaRequest, res: MedusaResponse) => {
  const { id, session_id } = req.params
  const { collection, unavailable } = await authorizationServiceOf(req).authorizeSessions(
    id,
    [session_id],
    requestContextOf(req),
    requestInfoOf(req)
  )
  if (unavailable) {
    throw unavailable
  }
  const session = collection.payment_sessions.find((s) => s.id === session_id)
  if (session?.status !== "authorized") {
    throw new MedusaError(
      MedusaError.Types.PAYMENT_AUTHORIZATION_ERROR,
      `Failed to authorize Payment Session id "${session_id}"`
    )
  }
  res.status(200).json({ payment_session: session })
}
