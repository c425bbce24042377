import { MedusaError } from "medusa-core-utils"

/** PostgreSQL error codes the plugin handles as data, not as crashes. */
export const PG_SERIALIZATION_FAILURE = "40001"
export const PG_DEADLOCK_DETECTED = "40P01"
export const PG_LOCK_NOT_AVAILABLE = "55P03"

const RETRYABLE_CODES = new Set([PG_SERIALIZATION_FAILURE, PG_DEADLOCK_DETECTED])

export function pgCode(err: unknown): string | undefined {
  const e = err as { code?: unknown; driverError?: { code?: unknown } }
  const code = e?.driverError?.code ?? e?.code
  return typeof code === "string" ? code : undefined
}

export function isRetryableConflict(err: unknown): boolean {
  return RETRYABLE_CODES.has(pgCode(err) ?? "")
}

export function conflictError(message: string): MedusaError {
  return new MedusaError(MedusaError.Types.CONFLICT, message)
}

/**
 * medusa-core-utils compiles MedusaError to ES5: `new MedusaError()` returns a
 * plain Error object, so `instanceof MedusaError` is always false. Errors are
 * told apart by their `type`, as Medusa's own error handler does.
 */
export function isMedusaError(
  err: unknown,
  type?: string
): err is MedusaError & { type: string } {
  const t = (err as { type?: unknown })?.type
  return (
    typeof t === "string" &&
    Object.values(MedusaError.Types).includes(t as never) &&
    (type === undefined || t === type)
  )
}

export type PaymentProviderUnavailableError = MedusaError & {
  status: 502 | 504
  provider_id: string
  payment_provider_unavailable: true
}

/**
 * A payment provider that crashed, timed out or could not be reached. The
 * plugin's error handler answers it with `status` (502 or 504) and a body that
 * names the provider; Medusa's own handler would still answer 500
 * `unexpected_state` with the same message.
 */
export function paymentProviderUnavailable(
  providerId: string,
  status: 502 | 504,
  message: string
): PaymentProviderUnavailableError {
  const err = new MedusaError(
    MedusaError.Types.UNEXPECTED_STATE,
    message,
    status === 504 ? "payment_provider_timeout" : "payment_provider_error"
  )
  return Object.assign(err, {
    status,
    provider_id: providerId,
    payment_provider_unavailable: true as const,
  })
}

export function isPaymentProviderUnavailable(
  err: unknown
): err is PaymentProviderUnavailableError {
  return (
    (err as { payment_provider_unavailable?: unknown })
      ?.payment_provider_unavailable === true
  )
}

/**
 * TypeORM's answer to a `fields`/`expand` naming something the entity does
 * not have. Core lets it through as a 500; it is the client's input.
 */
export function isUnknownFieldOrRelation(err: unknown): boolean {
  const e = err as { name?: unknown; message?: unknown }
  return (
    e?.name === "EntityPropertyNotFoundError" ||
    (typeof e?.message === "string" &&
      /^(Relation with property path .* was not found|Property ".*" was not found)/.test(
        e.message
      ))
  )
}

export type DatabaseUnavailableError = MedusaError & { status: 503; database_unavailable: true }

/** The database (or the attempt journal's connection to it) cannot be reached: 503, retry later. */
export function databaseUnavailable(message: string): DatabaseUnavailableError {
  const err = new MedusaError(MedusaError.Types.DB_ERROR, message, "database_unavailable")
  return Object.assign(err, { status: 503 as const, database_unavailable: true as const })
}

export function isDatabaseUnavailableError(err: unknown): err is DatabaseUnavailableError {
  return (err as { database_unavailable?: unknown })?.database_unavailable === true
}

/** PostgreSQL's codes for a server that is going away, starting or unreachable. */
const UNAVAILABLE_PG_CODES = new Set(["57P01", "57P02", "57P03", "08000", "08001", "08003", "08004", "08006"])
const UNAVAILABLE_NODE_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "ENOTFOUND", "EAI_AGAIN"])
const UNAVAILABLE_MESSAGES = [
  /Connection terminated/i,
  /timeout exceeded when trying to connect/i,
  /Client has encountered a connection error/i,
  /Connection is not established/i,
  /Query read timeout/i,
  /the database system is (starting up|shutting down|in recovery mode)/i,
]

/**
 * TypeORM releases a transaction's query runner when its connection dies (the
 * server went away mid-transaction); the transaction's next statement then
 * throws this instead of a connection error.
 */
const RELEASED_RUNNER_ERRORS = new Set(["QueryRunnerProviderAlreadyReleasedError", "QueryRunnerAlreadyReleasedError"])

/** Whether `err` says the database could not be reached (not that a statement was wrong). */
export function isConnectionFailure(err: unknown): boolean {
  const e = err as { code?: unknown; name?: unknown; driverError?: { code?: unknown; message?: unknown }; message?: unknown }
  if (typeof e?.name === "string" && RELEASED_RUNNER_ERRORS.has(e.name)) {
    return true
  }
  const code = pgCode(err)
  if (code && (UNAVAILABLE_PG_CODES.has(code) || UNAVAILABLE_NODE_CODES.has(code))) {
    return true
  }
  const message = String(e?.driverError?.message ?? e?.message ?? "")
  return UNAVAILABLE_MESSAGES.some((pattern) => pattern.test(message))
}
