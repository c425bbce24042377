import {
  transformStoreQuery,
  type MiddlewaresConfig,
} from "@medusajs/medusa"
import type { NextFunction, Request, Response } from "express"
import { paymentCollectionsErrorHandler } from "../lib/error-handler"
import { idempotency } from "../lib/idempotency-middleware"
import { SERVED_BY_HEADER, SERVED_BY_VALUE } from "../lib/plugin-info"
import { StoreGetPaymentCollectionsParams } from "./store/payment-collections/validators"

/** Core's defaults for "Get a PaymentCollection" (api/routes/store/payment-collections). */
export const defaultStorePaymentCollectionFields = [
  "id",
  "type",
  "status",
  "description",
  "amount",
  "region",
  "currency_code",
  "currency",
  "metadata",
]
export const defaultStorePaymentCollectionRelations = ["region", "payment_sessions"]

const parseStoreQuery = transformStoreQuery(StoreGetPaymentCollectionsParams, {
  defaultFields: defaultStorePaymentCollectionFields as never,
  defaultRelations: defaultStorePaymentCollectionRelations,
  isList: false,
})

/** Core's query parsing, skipped when there is nothing to parse (the common case). */
function parseStoreQueryWhenGiven(req: Request, res: Response, next: NextFunction) {
  if (Object.keys(req.query ?? {}).length === 0) {
    return next()
  }
  return parseStoreQuery(req as never, res, next)
}

function markServedByPlugin(_req: Request, res: Response, next: NextFunction) {
  res.setHeader(SERVED_BY_HEADER, SERVED_BY_VALUE)
  next()
}

// Matchers here also run in front of core's routes, so they name only this
// plugin's paths.
export const config: MiddlewaresConfig = {
  errorHandler: paymentCollectionsErrorHandler(),
  routes: [
    {
      matcher: "/store/payment-collections/:id",
      method: ["GET"],
      middlewares: [
        markServedByPlugin,
        parseStoreQueryWhenGiven,
      ],
    },
    {
      matcher: "/store/payment-collections/:id/sessions*",
      method: ["POST"],
      middlewares: [markServedByPlugin, idempotency()],
    },
  ],
}
