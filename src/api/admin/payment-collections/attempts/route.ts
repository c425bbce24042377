import type { MedusaRequest, MedusaResponse } from "@medusajs/medusa"
import { validateQuery } from "../../../http/validate-body"
import type PaymentCollectionJournalService from "../../../../services/payment-collection-journal"
import { AdminGetPaymentCollectionAttemptsByStateParams } from "../validators"

/** Attempts of every payment collection in one state, newest first (`?state=needs_attention`). */
export const GET = async (req: MedusaRequest, res: MedusaResponse) => {
  const { state, limit, offset } = await validateQuery(AdminGetPaymentCollectionAttemptsByStateParams, req.query)
  const journal: PaymentCollectionJournalService = req.scope.resolve("paymentCollectionJournalService")
  res.status(200).json(await journal.listInState(state, { limit, offset }))
}
