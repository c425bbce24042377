import { json, NextFunction, Request, Response } from "express"
import { MedusaError } from "medusa-core-utils"
import { MAX_ID_LENGTH } from "../store/payment-collections/validators"

/**
 * JSON bodies only. Medusa gives a plugin's routes JSON, text and urlencoded
 * parsers (core's own routes parse JSON only); a form-encoded body must not be
 * acted on. A body of another type is answered 415 before it is read, instead
 * of being ignored as core does, so a client learns what to send.
 */
export function jsonBodyOnly() {
  const parse = json({ limit: "100kb" })
  return (req: Request, res: Response, next: NextFunction) => {
    const length = req.headers["content-length"]
    const hasBody =
      req.headers["transfer-encoding"] !== undefined ||
      (length !== undefined && Number(length) > 0)
    if (hasBody && !req.is(["application/json", "application/*+json"])) {
      res.status(415).json({
        type: MedusaError.Types.INVALID_DATA,
        message: "The request body must be JSON, sent with Content-Type: application/json",
      })
      return
    }
    return parse(req, res, next)
  }
}

/**
 * An id no row can have — over the length limit or with a NUL byte, which
 * PostgreSQL refuses in a text parameter — is not found, not a 500.
 */
export function rejectImpossibleIds(req: Request, _res: Response, next: NextFunction) {
  for (const value of Object.values(req.params ?? {})) {
    if (typeof value === "string" && (value.length > MAX_ID_LENGTH || value.includes("\u0000"))) {
      return next(
        new MedusaError(MedusaError.Types.NOT_FOUND, "No resource exists with that id")
      )
    }
  }
  next()
}

type Middleware = (req: Request, res: Response, next: NextFunction) => unknown

/**
 * Runs `middleware` at most once per request. Express runs the middlewares of
 * every matching route pattern, and `/:id/sessions/batch` also matches
 * `/:id/sessions/:session_id`: an Idempotency-Key must not be claimed twice.
 */
export function oncePerRequest(middleware: Middleware): Middleware {
  const seen = new WeakSet<Request>()
  return (req, res, next) => {
    if (seen.has(req)) {
      return next()
    }
    seen.add(req)
    return middleware(req, res, next)
  }
}
