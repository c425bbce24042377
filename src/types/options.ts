/**
 * Options of medusa-plugin-payment-collections, given in `medusa-config.js`:
 * `plugins: [{ resolve: "medusa-plugin-payment-collections", options: { ... } }]`.
 */
export type PluginOptions = {
  /**
   * How long a request may wait for its turn on one payment collection (the
   * in-process queue plus PostgreSQL's row lock) before it is answered
   * 409 `conflict`.
   * @defaultValue 15000
   */
  lock_timeout_ms?: number
  /**
   * How long one call to a payment provider may take before the request is
   * answered 504 and its transaction rolled back.
   * @defaultValue 20000
   */
  provider_timeout_ms?: number
  /**
   * How long an Idempotency-Key is remembered, in seconds.
   * @defaultValue 86400 (24 hours)
   */
  idempotency_key_ttl_seconds?: number
}

export type ResolvedPluginOptions = Required<PluginOptions>

export const DEFAULT_OPTIONS: ResolvedPluginOptions = {
  lock_timeout_ms: 15_000,
  provider_timeout_ms: 20_000,
  idempotency_key_ttl_seconds: 24 * 60 * 60,
}

function positiveInteger(value: unknown, fallback: number): number {
  return typeof value === "number" && Number.isInteger(value) && value > 0
    ? value
    : fallback
}

export function resolveOptions(
  options: PluginOptions | undefined = {}
): ResolvedPluginOptions {
  return {
    lock_timeout_ms: positiveInteger(
      options.lock_timeout_ms,
      DEFAULT_OPTIONS.lock_timeout_ms
    ),
    provider_timeout_ms: positiveInteger(
      options.provider_timeout_ms,
      DEFAULT_OPTIONS.provider_timeout_ms
    ),
    idempotency_key_ttl_seconds: positiveInteger(
      options.idempotency_key_ttl_seconds,
      DEFAULT_OPTIONS.idempotency_key_ttl_seconds
    ),
  }
}
