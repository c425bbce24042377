import { MedusaError } from "medusa-core-utils"

/** PostgreSQL error codes the plugin handles as data, not as crashes. */
export const PG_SERIALIZATION_FAILURE = "40001"
export const PG_DEADLOCK_DETECTED = "40P01"
export const PG_LOCK_NOT_AVAILABLE = "55P03"
export const PG_QUERY_CANCELED = "57014"

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
 * A payment provider that crashed, timed out or could not be reached. The
 * plugin's error handler answers it with `status` (502 or 504) and a body that
 * names the provider; Medusa's own handler would still answer 500
 * `unexpected_state` with the same message.
 */
export class PaymentProviderUnavailableError extends MedusaError {
  readonly status: number
  readonly provider_id: string

  constructor(providerId: string, status: 502 | 504, message: string) {
    super(
      MedusaError.Types.UNEXPECTED_STATE,
      message,
      status === 504 ? "payment_provider_timeout" : "payment_provider_error"
    )
    this.status = status
    this.provider_id = providerId
  }
}

export function isPaymentProviderUnavailable(
  err: unknown
): err is PaymentProviderUnavailableError {
  return err instanceof PaymentProviderUnavailableError
}
