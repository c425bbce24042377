import { MedusaError } from "medusa-core-utils"

/** An answer as the client receives it: status and JSON body. */
export type StoredAnswer = { status: number; body: unknown }

/**
 * The answer Medusa's error handler gives a MedusaError that refuses the
 * client's request (4xx other than 409), built the same way: `{ code?, type,
 * message }`, duplicate_error with code `invalid_request_error`. Undefined for
 * anything a retry should run again (409, 5xx), which is never stored under an
 * Idempotency-Key.
 */
export function clientErrorAnswer(err: unknown): StoredAnswer | undefined {
  const { type, message, code } = (err ?? {}) as { type?: unknown; message?: unknown; code?: unknown }
  const status = CLIENT_ERROR_STATUS[String(type)]
  if (!status || typeof message !== "string") {
    return undefined
  }
  const answerCode = type === MedusaError.Types.DUPLICATE_ERROR ? "invalid_request_error" : code
  return { status, body: { ...(answerCode === undefined ? {} : { code: answerCode }), type, message } }
}

const CLIENT_ERROR_STATUS: Record<string, number> = {
  [MedusaError.Types.NOT_ALLOWED]: 400,
  [MedusaError.Types.INVALID_DATA]: 400,
  [MedusaError.Types.NOT_FOUND]: 404,
  [MedusaError.Types.PAYMENT_AUTHORIZATION_ERROR]: 422,
  [MedusaError.Types.DUPLICATE_ERROR]: 422,
}
