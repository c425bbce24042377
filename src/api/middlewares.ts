import {
  transformStoreQuery,
  type MiddlewaresConfig,
} from "@medusajs/medusa"
import type { NextFunction, Request, Response } from "express"
import { paymentCollectionsErrorHandler } from "../lib/error-handler"
import { idempotency } from "../lib/idempotency-middleware"
import { SERVED_BY_HEADER, SERVED_BY_VALUE } from "../lib/plugin-info"
import { jsonBodyOnly, oncePerRequest, rejectImpossibleIds } from "../lib/request-guards"
import { validateBody } from "../lib/validate-body"
import {
  StoreGetPaymentCollectionsParams,
  StorePaymentCollectionSessionsReq,
  StorePostPaymentCollectionsBatchSessionsAuthorizeReq,
  StorePostPaymentCollectionsBatchSessionsReq,
} from "./store/payment-collections/validators"
import { plainAuthorizeBody, plainBatchBody, plainCreateBody } from "./store/payment-collections/plain-bodies"

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

/**
 * The body each POST takes, by path (refresh and single authorize take none),
 * and its cheap check (plain-bodies.ts). Matched on the request's own path:
 * Express also runs the middlewares of `/:id/sessions/:session_id` for
 * `/:id/sessions/batch`.
 */
const BODIES: [RegExp, new () => object, (body: unknown) => object | undefined][] = [
  [/\/sessions\/batch\/authorize\/?$/, StorePostPaymentCollectionsBatchSessionsAuthorizeReq, plainAuthorizeBody],
  [/\/sessions\/batch\/?$/, StorePostPaymentCollectionsBatchSessionsReq, plainBatchBody],
  [/\/payment-collections\/[^/]+\/sessions\/?$/, StorePaymentCollectionSessionsReq, plainCreateBody],
]

/**
 * Validates the body before anything else happens (an Idempotency-Key is only
 * claimed for a request that passed), leaving it on `req.validatedBody`.
 */
async function validateSessionBody(req: Request, _res: Response, next: NextFunction) {
  const body = BODIES.find(([path]) => path.test(req.path))
  if (!body) {
    return next()
  }
  const [, dto, plain] = body
  try {
    ;(req as Request & { validatedBody?: unknown }).validatedBody = plain(req.body) ?? (await validateBody(dto, req.body))
    next()
  } catch (err) {
    next(err)
  }
}

const sessionRouteMiddlewares = [
  markServedByPlugin,
  rejectImpossibleIds,
  jsonBodyOnly(),
  oncePerRequest(validateSessionBody),
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
    // The admin routes send the header too, so a client (and the test suite)
    // can tell the plugin's answers; Medusa's admin authentication runs first,
    // so its 401 does not carry it.
    {
      matcher: "/admin/payment-collections/providers",
      method: ["GET"],
      middlewares: [markServedByPlugin],
    },
    {
      matcher: "/admin/orders/:id/payment-collections",
      method: ["GET"],
      middlewares: [markServedByPlugin, rejectImpossibleIds],
    },
    {
      matcher: "/admin/payment-collections/providers/:provider_id",
      method: ["POST"],
      bodyParser: false,
      middlewares: [markServedByPlugin, rejectImpossibleIds, jsonBodyOnly()],
    },
    {
      matcher: "/admin/payment-collections/:id/attempts",
      method: ["GET"],
      middlewares: [markServedByPlugin, rejectImpossibleIds],
    },
  ],
}
