import type { MedusaRequest, MedusaResponse } from "@medusajs/medusa"
import { validateBody } from "../../../../../http/validate-body"
import type PaymentCollectionJournalService from "../../../../../../services/payment-collection-journal"
import { AdminPostPaymentCollectionAttemptResolveReq } from "../../../validators"

/** An admin closes an open attempt, having settled it at the provider by hand. */
export const POST = async (req: MedusaRequest, res: MedusaResponse) => {
  const { note } = await validateBody(AdminPostPaymentCollectionAttemptResolveReq, req.body ?? {})
  const journal: PaymentCollectionJournalService = req.scope.resolve("paymentCollectionJournalService")
  const adminId = (req as MedusaRequest & { user?: { userId?: string; id?: string } }).user
  const attempt = await journal.resolve(req.params.attempt_id, adminId?.userId ?? adminId?.id ?? "unknown", note)
  res.status(200).json({ attempt })
}
