import {
  transformStoreQuery,
  type MiddlewaresConfig,
} from "@medusajs/medusa"
import type { NextFunction, Request, Response } from "express"
import { paymentCollectionsErrorHandler } from "../lib/error-handler"
import { idempotency } from "../lib/idempotency-middleware"
import { SERVED_BY_HEADER, SERVED_BY_VALUE } from "../lib/plugin-info"
import { jsonBodyOnly, oncePerRequest, rejectImpossibleIds } from "../lib/request-guards"
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

const SESSION_ROUTES = [
  "/store/payment-collections/:id/sessions",
  "/store/payment-collections/:id/sessions/batch",
  "/store/payment-collections/:id/sessions/batch/authorize",
  "/store/payment-collections/:id/sessions/:session_id",
  "/store/payment-collections/:id/sessions/:session_id/authorize",
]

const sessionRouteMiddlewares = [
  markServedByPlugin,
  rejectImpossibleIds,
  jsonBodyOnly(),
  oncePerRequest(idempotency()),
]

// Matchers here also run in front of core's routes, so they name exactly this
// plugin's paths. `bodyParser: false` replaces Medusa's JSON+text+urlencoded
// parsers on these routes with a JSON-only one (see jsonBodyOnly).
export const config: MiddlewaresConfig = {
  errorHandler: paymentCollectionsErrorHandler(),
  routes: [
    {
      matcher: "/store/payment-collections/:id",
      method: ["GET"],
      middlewares: [markServedByPlugin, rejectImpossibleIds, parseStoreQueryWhenGiven],
    },
    ...SESSION_ROUTES.map((matcher) => ({
      matcher,
      method: ["POST" as const],
      bodyParser: false as const,
      middlewares: sessionRouteMiddlewares,
    })),
    {
      matcher: "/admin/orders/:id/payment-collections",
      method: ["GET"],
      middlewares: [rejectImpossibleIds],
    },
    {
      matcher: "/admin/payment-collections/providers/:provider_id",
      method: ["POST"],
      bodyParser: false,
      middlewares: [rejectImpossibleIds, jsonBodyOnly()],
    },
  ],
}
