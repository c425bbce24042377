import { DEFAULT_OPTIONS, optionProblems, resolveOptions } from "../options"

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
        "idempotency_key_ttl_seconds, reconcile_interval_ms, attempt_retention_days, enableUI",
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
    })
  })
})
