import path from "path"
import { PLUGIN_NAME } from "../lib/plugin-info"

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
   * How long after a call that may have created something at a provider
   * without saying so (a kill or a reset mid-call) the plugin keeps asking the
   * provider's finder for it before it concludes that nothing more can appear.
   * It must cover the provider client's own timeout and retries (stripe-node:
   * 80 s). What is found meanwhile is deleted at once.
   * @defaultValue 300000 (5 minutes)
   */
  finder_settle_ms?: number
  /**
   * How far back the reconciler asks providers about sessions still `pending`
   * or `requires_more` (a shopper who confirmed and closed the tab, a webhook
   * that never came), in hours; an authorization found is recorded.
   * @defaultValue 24
   */
  status_sync_window_hours?: number
  /**
   * Whether an authorization the plugin learns of outside the storefront (a
   * provider's webhook, the status sync) that pays an order edit in full also
   * completes the edit, as `POST /store/order-edits/:id/complete` does.
   * @defaultValue true
   */
  complete_order_edit_on_authorization?: boolean
  /**
   * Whether the authorizations of an order edit that is declined or canceled
   * are canceled at their providers (the hold on the shopper's card released
   * at once). A collection is never deleted while it holds one: the delete is
   * refused (400) for an authorized collection or a session the shopper
   * confirmed.
   * @defaultValue true
   */
  release_holds?: boolean
  /**
   * Medusa's own switch for the plugin's admin extensions; the plugin itself
   * does not read it.
   */
  enableUI?: boolean
}

export type ResolvedPluginOptions = Required<Omit<PluginOptions, "enableUI">>

type NumericOption = {
  [K in keyof ResolvedPluginOptions]: ResolvedPluginOptions[K] extends number ? K : never
}[keyof ResolvedPluginOptions]
type BooleanOption = Exclude<keyof ResolvedPluginOptions, NumericOption>

/** Each switch's default. */
export const SWITCH_DEFAULTS: Record<BooleanOption, boolean> = {
  complete_order_edit_on_authorization: true,
  release_holds: true,
}

/** Each numeric option's default and the whole numbers it accepts. */
export const OPTION_RULES: Record<NumericOption, { default: number; min: number; max: number }> = {
  lock_timeout_ms: { default: 15_000, min: 1, max: 600_000 },
  provider_timeout_ms: { default: 20_000, min: 1, max: 600_000 },
  idempotency_key_ttl_seconds: { default: 24 * 60 * 60, min: 1, max: 365 * 24 * 60 * 60 },
  reconcile_interval_ms: { default: 60_000, min: 100, max: 24 * 60 * 60 * 1000 },
  attempt_retention_days: { default: 30, min: 1, max: 3650 },
  finder_settle_ms: { default: 5 * 60_000, min: 0, max: 24 * 60 * 60 * 1000 },
  status_sync_window_hours: { default: 24, min: 0, max: 24 * 30 },
}

export const DEFAULT_OPTIONS = {
  ...Object.fromEntries(Object.entries(OPTION_RULES).map(([name, rule]) => [name, rule.default])),
  ...SWITCH_DEFAULTS,
} as ResolvedPluginOptions

/** Every option's name, as messages list them. */
const OPTION_NAMES = [...Object.keys(OPTION_RULES), ...Object.keys(SWITCH_DEFAULTS), "enableUI"]

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
    if (name === "enableUI" || name in SWITCH_DEFAULTS) {
      if (typeof value !== "boolean") {
        problems.push(`option ${name} must be true or false, got ${describe(value)}`)
      }
      continue
    }
    const rule = OPTION_RULES[name as NumericOption]
    if (!rule) {
      problems.push(`unknown option ${name}; the options are ${OPTION_NAMES.join(", ")}`)
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
  if (!problems.length) {
    // An Idempotency-Key must outlive the longest request that can run under it:
    // a shorter one would be taken over (and its request run twice) while the
    // first still runs.
    const resolved = resolveOptions(options)
    const longest = Math.ceil(longestRequestMs(resolved) / 1000)
    if (resolved.idempotency_key_ttl_seconds < longest) {
      problems.push(
        `option idempotency_key_ttl_seconds must be at least ${longest}, the longest a request can run with these lock_timeout_ms and provider_timeout_ms, got ${resolved.idempotency_key_ttl_seconds}`
      )
    }
  }
  return problems
}

function describe(value: unknown): string {
  return typeof value === "string" ? JSON.stringify(value) : String(value)
}

// dist/types/options.js → the package root, which a project's `plugins` entry may name by path.
const PACKAGE_ROOT = path.resolve(__dirname, "..", "..")

type ConfigModuleLike = { projectConfig: object; plugins: unknown[] }

/**
 * Medusa's config module as its config loader makes it (loaders/config.js):
 * `projectConfig` and `plugins` are always there. No option of the plugin has
 * either name.
 */
function isConfigModule(value: unknown): value is ConfigModuleLike {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return false
  }
  const { projectConfig, plugins } = value as Record<string, unknown>
  return typeof projectConfig === "object" && projectConfig !== null && Array.isArray(plugins)
}

/** A `plugins` entry (a name or path, or `{ resolve, options }`) that loads this package. */
function namesThisPlugin(entry: unknown): boolean {
  const resolve = typeof entry === "string" ? entry : (entry as { resolve?: unknown } | null)?.resolve
  if (typeof resolve !== "string") {
    return false
  }
  // Medusa resolves a path against the working directory (loaders/helpers/resolve-plugins.js).
  return resolve === PLUGIN_NAME || path.resolve(resolve) === PACKAGE_ROOT
}

/**
 * The plugin's own options in what Medusa passes to its loaders and services.
 * Installed as a plugin, that is its `plugins` entry's `options`. Run as the
 * Medusa project itself (this repository's `npm start`), the plugin is loaded
 * as the "project plugin", to which Medusa 1.20 passes the whole config module
 * (loaders/helpers/resolve-plugins.js getResolvedPlugins): the plugin's options
 * are then those of the entry in its `plugins` that names this package, and
 * none (the defaults) when no entry does.
 */
export function pluginOptionsOf(options: unknown): unknown {
  if (!isConfigModule(options)) {
    return options
  }
  const entry = options.plugins.find(namesThisPlugin)
  return typeof entry === "object" && entry !== null ? (entry as { options?: unknown }).options : undefined
}

/**
 * The options in effect: the defaults, overridden by each valid option given
 * (`options` as Medusa passes it, see pluginOptionsOf). Invalid options are
 * refused at boot (see loaders/options.ts); a service built before that still
 * gets a working value.
 */
export function resolveOptions(options?: unknown): ResolvedPluginOptions {
  const plugin = pluginOptionsOf(options)
  const given = (typeof plugin === "object" && plugin !== null ? plugin : {}) as Record<string, unknown>
  const resolved = { ...DEFAULT_OPTIONS }
  for (const name of Object.keys(SWITCH_DEFAULTS) as BooleanOption[]) {
    if (typeof given[name] === "boolean") {
      resolved[name] = given[name] as boolean
    }
  }
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

/**
 * How long a locked transaction may sit idle (the plugin sets it for each
 * transaction): a provider call, bounded by `provider_timeout_ms`, between the
 * journal's writes, each bounded by `lock_timeout_ms`, and a margin. A
 * pooler's own idle-transaction timeout (PgBouncer's idle_transaction_timeout)
 * must be longer than this.
 */
export function transactionIdleTimeoutMs(options: ResolvedPluginOptions): number {
  return options.provider_timeout_ms + 2 * options.lock_timeout_ms + 5_000
}
