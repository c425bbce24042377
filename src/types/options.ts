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
   * answered 504. A call still unanswered after twice this long is treated as
   * abandoned by the reconciler.
   * @defaultValue 20000
   */
  provider_timeout_ms?: number
  /**
   * How long an Idempotency-Key is remembered, in seconds.
   * @defaultValue 86400 (24 hours)
   */
  idempotency_key_ttl_seconds?: number
  /**
   * How often each backend process looks for provider calls that a failed or
   * killed request left unfinished, and finishes them.
   * @defaultValue 60000
   */
  reconcile_interval_ms?: number
  /**
   * How long finished rows of the attempt journal are kept, in days.
   * @defaultValue 30
   */
  attempt_retention_days?: number
  /**
   * Medusa's own switch for the plugin's admin extensions; the plugin itself
   * does not read it.
   */
  enableUI?: boolean
}

export type ResolvedPluginOptions = Required<Omit<PluginOptions, "enableUI">>

type NumericOption = keyof ResolvedPluginOptions

/** Each numeric option's default and the whole numbers it accepts. */
export const OPTION_RULES: Record<NumericOption, { default: number; min: number; max: number }> = {
  lock_timeout_ms: { default: 15_000, min: 1, max: 600_000 },
  provider_timeout_ms: { default: 20_000, min: 1, max: 600_000 },
  idempotency_key_ttl_seconds: { default: 24 * 60 * 60, min: 1, max: 365 * 24 * 60 * 60 },
  reconcile_interval_ms: { default: 60_000, min: 100, max: 24 * 60 * 60 * 1000 },
  attempt_retention_days: { default: 30, min: 1, max: 3650 },
}

export const DEFAULT_OPTIONS = Object.fromEntries(
  Object.entries(OPTION_RULES).map(([name, rule]) => [name, rule.default])
) as ResolvedPluginOptions

/**
 * What is wrong with `options`, one sentence per option that names it and says
 * what it accepts; empty when they are valid.
 */
export function optionProblems(options: unknown): string[] {
  if (options === undefined || options === null) {
    return []
  }
  if (typeof options !== "object" || Array.isArray(options)) {
    return ["the plugin's options must be an object"]
  }
  const problems: string[] = []
  for (const [name, value] of Object.entries(options as Record<string, unknown>)) {
    if (name === "enableUI") {
      if (typeof value !== "boolean") {
        problems.push(`option enableUI must be true or false, got ${describe(value)}`)
      }
      continue
    }
    const rule = OPTION_RULES[name as NumericOption]
    if (!rule) {
      problems.push(
        `unknown option ${name}; the options are ${[...Object.keys(OPTION_RULES), "enableUI"].join(", ")}`
      )
      continue
    }
    if (
      typeof value !== "number" ||
      !Number.isInteger(value) ||
      value < rule.min ||
      value > rule.max
    ) {
      problems.push(
        `option ${name} must be a whole number from ${rule.min} to ${rule.max}, got ${describe(value)}`
      )
    }
  }
  return problems
}

function describe(value: unknown): string {
  return typeof value === "string" ? JSON.stringify(value) : String(value)
}

/**
 * The options in effect: the defaults, overridden by each valid option given.
 * Invalid options are refused at boot (see loaders/options.ts); a service
 * built before that still gets a working value.
 */
export function resolveOptions(options: PluginOptions | undefined = {}): ResolvedPluginOptions {
  const given = (options ?? {}) as Record<string, unknown>
  const resolved = { ...DEFAULT_OPTIONS }
  for (const [name, rule] of Object.entries(OPTION_RULES) as [NumericOption, (typeof OPTION_RULES)[NumericOption]][]) {
    const value = given[name]
    if (typeof value === "number" && Number.isInteger(value) && value >= rule.min && value <= rule.max) {
      resolved[name] = value
    }
  }
  return resolved
}

/** Provider calls a request may keep starting for, after its turn came: this many provider timeouts. */
const PROVIDER_BUDGET_TIMEOUTS = 4

/**
 * How long after it starts a request stops starting provider calls: its wait
 * for the collection's lock plus a budget of provider time. A batch that needs
 * more is answered 504 and what it did is finished like any failed request.
 */
export function requestBudgetMs(options: ResolvedPluginOptions): number {
  return options.lock_timeout_ms + PROVIDER_BUDGET_TIMEOUTS * options.provider_timeout_ms
}

/**
 * The longest a request can run under these options: its budget, the last
 * provider call started within it, and the wait for the lock again to finish
 * what it did not commit. An Idempotency-Key whose request has run longer than
 * this is taken to be stuck (its process died).
 */
export function longestRequestMs(options: ResolvedPluginOptions): number {
  return requestBudgetMs(options) + options.provider_timeout_ms + options.lock_timeout_ms
}
