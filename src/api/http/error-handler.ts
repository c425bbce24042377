import { errorHandler } from "@medusajs/medusa"
import type { NextFunction, Request, Response } from "express"
import { MedusaError } from "medusa-core-utils"
import {
  databaseUnavailable,
  isConnectionFailure,
  isDatabaseUnavailableError,
  isPaymentProviderUnavailable,
  pgCode,
} from "../../lib/errors"
import { SERVED_BY_HEADER, SERVED_BY_VALUE } from "../../lib/plugin-info"

/** PostgreSQL's refusal of a text value (a NUL byte, an untranslatable character). */
function isInvalidTextParameter(err: unknown): boolean {
  return ["22021", "22P05"].includes(pgCode(err) ?? "")
}

type BodyParserError = Error & { type?: string; status?: number }

const BODY_PARSER_MESSAGES: Record<string, string> = {
  "entity.parse.failed": "The request body is not valid JSON",
  "entity.too.large": "The request body is too large",
  "encoding.unsupported": "The request body's encoding is not supported",
  "charset.unsupported": "The request body's charset is not supported",
  "request.aborted": "The request was aborted",
  "request.size.invalid": "The request body's size does not match its Content-Length",
  "entity.verify.failed": "The request body could not be verified",
  "parameters.too.many": "The request body has too many parameters",
}

/**
 * Medusa's error handler, plus what it answers 500 for although the client, a
 * provider or the database's availability is at fault: body-parser errors
 * (malformed JSON, a body too large) become 4xx `invalid_data`, an unreachable
 * or crashing provider becomes a 502/504 whose body names the provider, and a
 * database that cannot be reached a 503 (retry later).
 */
export function paymentCollectionsErrorHandler() {
  const medusaErrorHandler = errorHandler()
  return (err: unknown, req: Request, res: Response, next: NextFunction) => {
    // What this handler answers, the plugin answers — also errors raised before
    // a route's own middleware set the header (a path that is not validly
    // percent-encoded fails while express matches the route).
    if (!res.headersSent) {
      res.setHeader(SERVED_BY_HEADER, SERVED_BY_VALUE)
    }
    const retryAfter = (err as { retry_after_seconds?: unknown })?.retry_after_seconds
    if (typeof retryAfter === "number" && !res.headersSent) {
      res.setHeader("Retry-After", String(retryAfter))
    }
    const parserError = err as BodyParserError
    if (parserError?.type && BODY_PARSER_MESSAGES[parserError.type]) {
      const status =
        parserError.status && parserError.status >= 400 && parserError.status < 500
          ? parserError.status
          : 400
      res.status(status).json({
        type: MedusaError.Types.INVALID_DATA,
        message: BODY_PARSER_MESSAGES[parserError.type],
      })
      return
    }
    if (err instanceof URIError) {
      res.status(400).json({
        type: MedusaError.Types.INVALID_DATA,
        message: "The request path is not validly percent-encoded",
      })
      return
    }
    if (isInvalidTextParameter(err)) {
      res.status(400).json({
        type: MedusaError.Types.INVALID_DATA,
        message: "The request contains characters that cannot be stored",
      })
      return
    }
    if (isDatabaseUnavailableError(err) || isConnectionFailure(err)) {
      const unavailable = isDatabaseUnavailableError(err)
        ? err
        : databaseUnavailable("The database is unavailable; retry later")
      res.status(503).json({ type: unavailable.type, code: unavailable.code, message: unavailable.message })
      return
    }
    if (isPaymentProviderUnavailable(err)) {
      const logger = (req as Request & { scope: { resolve: (n: string) => { error: (e: unknown) => void } } }).scope.resolve("logger")
      logger.error(err)
      res.status(err.status).json({
        type: err.type,
        code: err.code,
        message: err.message,
      })
      return
    }
    return medusaErrorHandler(err as never, req, res, next)
  }
}
