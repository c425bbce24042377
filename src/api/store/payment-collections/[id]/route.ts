import type { MedusaRequest, MedusaResponse } from "@medusajs/medusa"
import { sessionServiceOf } from "../../../http/request-context"

/**
 * Get a PaymentCollection. `fields`/`expand`, when given, were parsed by
 * core's transformStoreQuery (see api/middlewares.ts).
 */
export const GET = async (req: MedusaRequest, res: MedusaResponse) => {
  res.status(200).json(await sessionServiceOf(req).retrieve(req.params.id, req.retrieveConfig))
}
