import fs from "fs"
import os from "os"
import path from "path"
import { createApi } from "./helpers/http"
import { startExtraBackend, stopExtraBackends } from "./helpers/backend"

// The plugin's options are checked once, at boot (src/loaders/options.ts): a
// backend whose medusa-config.js gives the plugin an option it does not know,
// or a value it does not accept, stops with a message naming the option; a
// backend with valid options logs the options in effect, once.

const withOptions = (options: unknown, env: Record<string, string> = {}) => ({
  env: { ...env, PAYMENT_COLLECTIONS_OPTIONS: JSON.stringify(options) },
  exactOptions: true,
})

/** The error startExtraBackend rejects with: why the process ended, and its last output. */
async function bootFailure(options: unknown): Promise<string> {
  try {
    const backend = await startExtraBackend(withOptions(options))
    await backend.stop()
  } catch (err) {
    return (err as Error).message
  }
  throw new Error(`a backend with the options ${JSON.stringify(options)} started`)
}

describe("the plugin's options, checked at boot", () => {
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), "pcp-options-"))

  afterAll(async () => {
    await stopExtraBackends()
    fs.rmSync(logDir, { recursive: true, force: true })
  })

  it(
    "a backend given an unknown option (a misspelled lock_timeout_ms) does not start, and names the option and " +
      "the options there are",
    async () => {
      const failure = await bootFailure({ lock_timeout: 5000 })

      expect(failure).toMatch(/exited early \(1\)/)
      expect(failure).toContain("invalid plugin options")
      expect(failure).toContain(
        "unknown option lock_timeout; the options are lock_timeout_ms, provider_timeout_ms, " +
          "idempotency_key_ttl_seconds, reconcile_interval_ms, attempt_retention_days, finder_settle_ms, " +
          "status_sync_window_hours, complete_order_edit_on_authorization, release_holds, enableUI"
      )
    },
    180_000
  )

  it(
    "a backend given a value of the wrong type does not start, and names the option and what it accepts",
    async () => {
      const failure = await bootFailure({ provider_timeout_ms: "20000" })

      expect(failure).toMatch(/exited early \(1\)/)
      expect(failure).toContain('option provider_timeout_ms must be a whole number from 1 to 600000, got "20000"')
    },
    180_000
  )

  it(
    "a backend with valid options starts, serves the plugin's routes and logs the options in effect once",
    async () => {
      const logFile = path.join(logDir, "backend.log")
      const backend = await startExtraBackend({
        ...withOptions({ lock_timeout_ms: 2500, enableUI: false }, { LOG_LEVEL: "info" }),
        logFile,
      })
      const res = await createApi(backend.url).get("/store/payment-collections/paycol_missing")
      await backend.stop()

      expect(res.status).toBe(404)
      expect(res.headers["x-payment-collections-plugin"]).toMatch(/^medusa-plugin-payment-collections@/)
      const lines = fs
        .readFileSync(logFile, "utf8")
        .split("\n")
        .filter((line) => line.includes("medusa-plugin-payment-collections: options in effect"))
      expect(lines).toHaveLength(1)
      expect(JSON.parse(lines[0].slice(lines[0].indexOf("{")))).toEqual({
        lock_timeout_ms: 2500,
        provider_timeout_ms: 20000,
        idempotency_key_ttl_seconds: 86400,
        reconcile_interval_ms: 60000,
        attempt_retention_days: 30,
        finder_settle_ms: 300000,
        status_sync_window_hours: 24,
        complete_order_edit_on_authorization: true,
        release_holds: true,
      })
    },
    180_000
  )
})
