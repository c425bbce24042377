import path from "path"
import { onSharedDatabase, testEnv } from "./env"

export interface MedusaHost {
  runMigrations(options: { hostDir: string; databaseUrl: string; env?: Record<string, string> }): Promise<void>
  startBackend(options: {
    hostDir: string
    databaseUrl: string
    port?: number
    env?: Record<string, string>
    logFile?: string
  }): Promise<{ url: string; port: number; pid: number; stop(): Promise<void>; output(): string }>
}

// Plain CommonJS shared with the scripts; typed here instead of allowJs.
// eslint-disable-next-line @typescript-eslint/no-var-requires
export const medusaHost: MedusaHost = require(path.resolve(__dirname, "../../scripts/lib/medusa-host.js"))

export interface ExtraBackend {
  url: string
  port: number
  pid: number
  /** Last ~200 lines the process printed (also kept when logFile is given) */
  output(): string
  stop(): Promise<void>
}

const started = new Set<ExtraBackend>()

/**
 * Starts another backend process on the shared database (e.g. a second instance,
 * or other env such as REDIS_URL, PAYMENT_COLLECTIONS_OPTIONS, HOST_WITHOUT_PLUGIN),
 * reaching it the way the shared backend does (through PgBouncer in the
 * "pgbouncer" project) and talking to the run's one fake PSP and fake Stripe
 * API (so it registers the same payment providers as the shared backend: a
 * backend registers its providers as the installed ones at boot). Stop it in
 * afterAll (or call stopExtraBackends()).
 */
export async function startExtraBackend({
  env = {},
  logFile,
  databaseUrl,
  exactOptions = false,
}: {
  env?: Record<string, string>
  logFile?: string
  /** Another way to the run's database (e.g. as a role of its own); default: the shared backend's */
  databaseUrl?: string
  /** The plugin gets PAYMENT_COLLECTIONS_OPTIONS as given (default: the status sync off unless given) */
  exactOptions?: boolean
} = {}): Promise<ExtraBackend> {
  const { hostDir, backendDatabaseUrl, pspUrl, stripeUrl, stripeApiKey, stripeWebhookSecret } = testEnv()
  if (onSharedDatabase() && !exactOptions && !("HOST_WITHOUT_PLUGIN" in env)) {
    env = { ...env, PAYMENT_COLLECTIONS_OPTIONS: JSON.stringify(sharedDatabaseOptions(env.PAYMENT_COLLECTIONS_OPTIONS)) }
  }
  const backend = await medusaHost.startBackend({
    hostDir,
    databaseUrl: databaseUrl ?? backendDatabaseUrl,
    port: 0,
    env: {
      TEST_PAY_PSP_URL: pspUrl,
      FAKE_STRIPE_URL: stripeUrl,
      FAKE_STRIPE_API_KEY: stripeApiKey,
      FAKE_STRIPE_WEBHOOK_SECRET: stripeWebhookSecret,
      ...env,
    },
    logFile,
  })
  const handle: ExtraBackend = {
    url: backend.url,
    port: backend.port,
    pid: backend.pid,
    output: backend.output,
    stop: async () => {
      started.delete(handle)
      await backend.stop()
    },
  }
  started.add(handle)
  return handle
}

/**
 * On the shared database, the status sync is off unless a spec turns it on:
 * its polls of every pending session of the run would take the provider
 * faults a spec scripts for its own calls (as for the shared backend,
 * setup/global-setup.js). The sync's specs run on databases of their own.
 */
function sharedDatabaseOptions(given: string | undefined): Record<string, unknown> {
  return { status_sync_window_hours: 0, ...JSON.parse(given || "{}") }
}

/** Stops every backend this test file started and has not stopped yet. */
export async function stopExtraBackends(): Promise<void> {
  await Promise.all([...started].map((b) => b.stop()))
}
