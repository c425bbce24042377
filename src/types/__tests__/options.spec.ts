import path from "path"
import { DEFAULT_OPTIONS, optionProblems, pluginOptionsOf, resolveOptions } from "../options"

const PACKAGE_ROOT = path.resolve(__dirname, "..", "..", "..")

/** A config module as Medusa 1.20's config loader makes it (loaders/config.js). */
function configModule(plugins: unknown[]) {
  return {
    projectConfig: { database_url: "postgres://localhost/medusa", jwt_secret: "s", cookie_secret: "s", worker_mode: "shared" },
    modules: { eventBus: { resolve: "@medusajs/event-bus-local" } },
    featureFlags: { analytics: false },
    plugins,
  }
}

describe("optionProblems", () => {
  it("accepts no options, empty options and every option at its bounds", () => {
    expect(optionProblems(undefined)).toEqual([])
    expect(optionProblems({})).toEqual([])
    expect(
      optionProblems({
        lock_timeout_ms: 1,
        provider_timeout_ms: 600_000,
        idempotency_key_ttl_seconds: 365 * 24 * 60 * 60,
        reconcile_interval_ms: 100,
        attempt_retention_days: 3650,
        enableUI: false,
      })
    ).toEqual([])
  })

  it("names an unknown option and lists the options there are", () => {
    expect(optionProblems({ lock_timeout: 5000 })).toEqual([
      "unknown option lock_timeout; the options are lock_timeout_ms, provider_timeout_ms, " +
        "idempotency_key_ttl_seconds, reconcile_interval_ms, attempt_retention_days, finder_settle_ms, " +
        "status_sync_window_hours, complete_order_edit_on_authorization, release_holds, enableUI",
    ])
  })

  it("names an option of the wrong type and says what it accepts", () => {
    expect(optionProblems({ provider_timeout_ms: "20000" })).toEqual([
      'option provider_timeout_ms must be a whole number from 1 to 600000, got "20000"',
    ])
    expect(optionProblems({ enableUI: "yes" })).toEqual(['option enableUI must be true or false, got "yes"'])
  })

  it("refuses values out of range, fractions, NaN and null", () => {
    expect(optionProblems({ lock_timeout_ms: 0 })).toEqual([
      "option lock_timeout_ms must be a whole number from 1 to 600000, got 0",
    ])
    expect(optionProblems({ reconcile_interval_ms: 99 })).toHaveLength(1)
    expect(optionProblems({ attempt_retention_days: 1.5 })).toHaveLength(1)
    expect(optionProblems({ idempotency_key_ttl_seconds: Number.NaN })).toHaveLength(1)
    expect(optionProblems({ lock_timeout_ms: null })).toHaveLength(1)
  })

  it("refuses an Idempotency-Key lifetime shorter than the longest request the other options allow", () => {
    // 2 × 1000 (lock) + 5 × 1000 (provider) = 7 s: a key must live at least that long.
    expect(optionProblems({ lock_timeout_ms: 1000, provider_timeout_ms: 1000, idempotency_key_ttl_seconds: 6 })).toEqual([
      "option idempotency_key_ttl_seconds must be at least 7, the longest a request can run with these lock_timeout_ms and provider_timeout_ms, got 6",
    ])
    expect(optionProblems({ lock_timeout_ms: 1000, provider_timeout_ms: 1000, idempotency_key_ttl_seconds: 7 })).toEqual([])
    expect(optionProblems({ idempotency_key_ttl_seconds: 1 })).toHaveLength(1)
  })

  it("takes switches as booleans only", () => {
    expect(optionProblems({ release_holds: false, complete_order_edit_on_authorization: true })).toEqual([])
    expect(optionProblems({ release_holds: "no" })).toEqual(['option release_holds must be true or false, got "no"'])
    expect(resolveOptions({ release_holds: false })).toEqual({ ...DEFAULT_OPTIONS, release_holds: false })
  })

  it("reports every problem, not only the first", () => {
    expect(optionProblems({ lock_timeout: 1, provider_timeout_ms: -1, enableUI: 1 })).toHaveLength(3)
  })

  it("refuses options that are not an object", () => {
    expect(optionProblems("fast")).toEqual(["the plugin's options must be an object"])
    expect(optionProblems([1])).toEqual(["the plugin's options must be an object"])
  })
})

describe("resolveOptions", () => {
  it("fills in the defaults and keeps the valid values given", () => {
    expect(resolveOptions(undefined)).toEqual(DEFAULT_OPTIONS)
    expect(resolveOptions({ lock_timeout_ms: 2500, enableUI: true })).toEqual({ ...DEFAULT_OPTIONS, lock_timeout_ms: 2500 })
  })

  it("has the defaults the README documents", () => {
    expect(DEFAULT_OPTIONS).toEqual({
      lock_timeout_ms: 15_000,
      provider_timeout_ms: 20_000,
      idempotency_key_ttl_seconds: 86_400,
      reconcile_interval_ms: 60_000,
      attempt_retention_days: 30,
      finder_settle_ms: 300_000,
      status_sync_window_hours: 24,
      complete_order_edit_on_authorization: true,
      release_holds: true,
    })
  })
})

describe("pluginOptionsOf", () => {
  it("passes a plugins entry's options through as they are, valid or not", () => {
    expect(pluginOptionsOf(undefined)).toBeUndefined()
    expect(pluginOptionsOf({ lock_timeout_ms: 2500 })).toEqual({ lock_timeout_ms: 2500 })
    expect(pluginOptionsOf({ lock_timeout: 1 })).toEqual({ lock_timeout: 1 })
    expect(pluginOptionsOf("fast")).toBe("fast")
  })

  it("finds no options of the plugin in a project's config module that does not list it: the defaults apply", () => {
    const project = configModule(["medusa-payment-manual", { resolve: "@medusajs/admin", options: { serve: true } }])

    expect(pluginOptionsOf(project)).toBeUndefined()
    expect(optionProblems(pluginOptionsOf(project))).toEqual([])
    expect(resolveOptions(project)).toEqual(DEFAULT_OPTIONS)
  })

  it("finds the options of the entry that names the package, by name or by path", () => {
    const byName = configModule([
      "medusa-payment-manual",
      { resolve: "medusa-plugin-payment-collections", options: { lock_timeout_ms: 2500 } },
    ])
    const byPath = configModule([{ resolve: PACKAGE_ROOT, options: { reconcile_interval_ms: 500 } }])
    const byRelativePath = configModule([
      { resolve: path.relative(process.cwd(), PACKAGE_ROOT) || ".", options: { attempt_retention_days: 7 } },
    ])

    expect(pluginOptionsOf(byName)).toEqual({ lock_timeout_ms: 2500 })
    expect(resolveOptions(byName)).toEqual({ ...DEFAULT_OPTIONS, lock_timeout_ms: 2500 })
    expect(resolveOptions(byPath)).toEqual({ ...DEFAULT_OPTIONS, reconcile_interval_ms: 500 })
    expect(resolveOptions(byRelativePath)).toEqual({ ...DEFAULT_OPTIONS, attempt_retention_days: 7 })
    expect(pluginOptionsOf(configModule(["medusa-plugin-payment-collections"]))).toBeUndefined()
  })

  it("leaves the options a project gives the plugin to be checked like any others", () => {
    const project = configModule([{ resolve: "medusa-plugin-payment-collections", options: { lock_timeout: 1 } }])

    expect(optionProblems(pluginOptionsOf(project))).toEqual([
      "unknown option lock_timeout; the options are lock_timeout_ms, provider_timeout_ms, " +
        "idempotency_key_ttl_seconds, reconcile_interval_ms, attempt_retention_days, finder_settle_ms, " +
        "status_sync_window_hours, complete_order_edit_on_authorization, release_holds, enableUI",
    ])
  })

  it("takes an object for a config module only with projectConfig and plugins, as Medusa's loader makes it", () => {
    const notAModule = { projectConfig: {}, lock_timeout_ms: 2500 }

    expect(pluginOptionsOf(notAModule)).toBe(notAModule)
    expect(optionProblems(pluginOptionsOf(notAModule))).toEqual([
      expect.stringMatching(/^unknown option projectConfig;/),
    ])
  })
})
