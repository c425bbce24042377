import type { MedusaRequest, MedusaResponse } from "@medusajs/medusa"
import { validateQuery } from "../../../../http/validate-body"
import type PaymentCollectionJournalService from "../../../../../services/payment-collection-journal"
import { AdminGetPaymentCollectionAttemptsParams } from "../../validators"

/** The attempt log of one payment collection: every provider call, newest first. */
export const GET = async (req: MedusaRequest, res: MedusaResponse) => {
  const { limit, offset } = await validateQuery(AdminGetPaymentCollectionAttemptsParams, req.query)
  const journal: PaymentCollectionJournalService = req.scope.resolve("paymentCollectionJournalService")
  res.status(200).json(await journal.listForCollection(req.params.id, { limit, offset }))
}
