import type { MedusaRequest, MedusaResponse } from "@medusajs/medusa"
import { sessionServiceOf } from "../../../http/request-context"

/**
 * Get a PaymentCollection. `fields`/`expand`, when given, were parsed by
 * core's transformStoreQuery (see api/middlewares.ts).
 */
export const GET = async (req: MedusaRequest, res: MedusaResponse) => {
  const payment_collection = await sessionServiceOf(req).retrieve(req.params.id, req.retrieveConfig)
  res.status(200).json({ payment_collection })
}
