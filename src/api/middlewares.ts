import {
  transformStoreQuery,
  type MiddlewaresConfig,
} from "@medusajs/medusa"
import type { NextFunction, Request, Response } from "express"
import { paymentCollectionsErrorHandler } from "./http/error-handler"
import { idempotency } from "./http/idempotency-middleware"
import { SERVED_BY_HEADER, SERVED_BY_VALUE } from "../lib/plugin-info"
import { jsonBodyOnly, oncePerRequest, rejectImpossibleIds } from "./http/request-guards"
import { validateBody } from "./http/validate-body"
import {
  StoreGetPaymentCollectionsParams,
  StorePaymentCollectionSessionsReq,
  StorePostPaymentCollectionsBatchSessionsAuthorizeReq,
  StorePostPaymentCollectionsBatchSessionsReq,
} from "./store/payment-collections/validators"
import { plainAuthorizeBody, plainBatchBody, plainCreateBody } from "./http/plain-bodies"

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

type BodyCheck = [dto: new () => object, plain: (body: unknown) => object | undefined]

/**
 * The session routes, each with the body it takes (refresh and single
 * authorize take none) and its cheap check (plain-bodies.ts). Medusa registers
 * these middlewares in this order, and Express runs the middlewares of every
 * pattern a path matches: `/sessions/batch` also matches `/:session_id`, and
 * `/sessions/batch/authorize` also matches `/:session_id/authorize`. The
 * routes with a body come first, so a body is validated before any chain
 * claims an Idempotency-Key (only a valid request claims one).
 */
const SESSION_ROUTES: { matcher: string; body?: BodyCheck }[] = [
  { matcher: "/store/payment-collections/:id/sessions", body: [StorePaymentCollectionSessionsReq, plainCreateBody] },
  {
    matcher: "/store/payment-collections/:id/sessions/batch",
    body: [StorePostPaymentCollectionsBatchSessionsReq, plainBatchBody],
  },
  {
    matcher: "/store/payment-collections/:id/sessions/batch/authorize",
    body: [StorePostPaymentCollectionsBatchSessionsAuthorizeReq, plainAuthorizeBody],
  },
  { matcher: "/store/payment-collections/:id/sessions/:session_id" },
  { matcher: "/store/payment-collections/:id/sessions/:session_id/authorize" },
]

/** Validates the body, leaving it on `req.validatedBody`: the cheap check, else class-validator. */
function validateSessionBody([dto, plain]: BodyCheck) {
  return async (req: Request, _res: Response, next: NextFunction) => {
    try {
      ;(req as Request & { validatedBody?: unknown }).validatedBody = plain(req.body) ?? (await validateBody(dto, req.body))
      next()
    } catch (err) {
      next(err)
    }
  }
}

/** Once per request, though several chains run for one path. */
const claimIdempotencyKey = oncePerRequest(idempotency())

function sessionRouteMiddlewares(body?: BodyCheck) {
  return [
    markServedByPlugin,
    rejectImpossibleIds,
    jsonBodyOnly(),
    ...(body ? [validateSessionBody(body)] : []),
    claimIdempotencyKey,
  ]
}

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
    ...SESSION_ROUTES.map(({ matcher, body }) => ({
      matcher,
      method: ["POST" as const],
      bodyParser: false as const,
      middlewares: sessionRouteMiddlewares(body),
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
    // Core's admin writers of a collection, served under its lock.
    {
      matcher: "/admin/payment-collections/:id/authorize",
      method: ["POST"],
      middlewares: [markServedByPlugin, rejectImpossibleIds],
    },
    {
      matcher: "/admin/payment-collections/:id",
      method: ["DELETE"],
      middlewares: [markServedByPlugin, rejectImpossibleIds],
    },
    {
      matcher: "/admin/payment-collections/attempts",
      method: ["GET"],
      middlewares: [markServedByPlugin],
    },
    {
      matcher: "/admin/payment-collections/attempts/:attempt_id/resolve",
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
