import path from "path"
import { testEnv } from "./env"

export interface MedusaHost {
  runMigrations(options: { hostDir: string; databaseUrl: string }): Promise<void>
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
 * "pgbouncer" project) and talking to the run's one fake PSP. Stop it in
 * afterAll (or call stopExtraBackends()).
 */
export async function startExtraBackend({
  env = {},
  logFile,
}: { env?: Record<string, string>; logFile?: string } = {}): Promise<ExtraBackend> {
  const { hostDir, backendDatabaseUrl, pspUrl } = testEnv()
  const backend = await medusaHost.startBackend({
    hostDir,
    databaseUrl: backendDatabaseUrl,
    port: 0,
    env: { TEST_PAY_PSP_URL: pspUrl, ...env },
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

/** Stops every backend this test file started and has not stopped yet. */
export async function stopExtraBackends(): Promise<void> {
  await Promise.all([...started].map((b) => b.stop()))
}
