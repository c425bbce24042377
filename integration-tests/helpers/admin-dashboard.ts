import { execFileSync } from "child_process"
import fs from "fs"
import path from "path"
import { chromium, Browser } from "playwright-core"
import { repoEnv } from "./repo-env"

// The plain CommonJS modules the dashboard spec shares with the scripts, typed
// here instead of allowJs.
const lib = (name: string) => require(path.resolve(__dirname, "../../scripts/lib", name)) // eslint-disable-line @typescript-eslint/no-var-requires

export interface AdminHost {
  dir: string
  /** The host's `medusa` binary */
  cli: string
  /** Milliseconds per step that ran: npm_ci, pack, install_plugin, admin_build */
  timings: Record<string, number>
  logFile: string
}

export const adminHost: {
  prepareAdminHost(options?: { dir?: string; log?: (message: string) => void }): Promise<AdminHost>
} = lib("admin-host.js")

export const medusaHost: {
  runMigrations(options: { hostDir: string; databaseUrl: string; cli: string; env?: Record<string, string> }): Promise<void>
  startBackend(options: {
    hostDir: string
    databaseUrl: string
    cli: string
    port?: number
    env?: Record<string, string>
    logFile?: string
  }): Promise<{ url: string; port: number; pid: number; stop(): Promise<void>; output(): string }>
} = lib("medusa-host.js")

export const postgres: {
  createDatabase(baseUrl: string, name: string): Promise<void>
  dropDatabase(baseUrl: string, name: string): Promise<void>
  databaseUrl(baseUrl: string, name: string): string
} = lib("postgres.js")

export const adminLogin: {
  ensureAdminLogin(url: string, options: { apiToken: string; email: string; password: string }): Promise<boolean>
} = lib("admin-login.js")

const CHROMIUM = process.env.PCP_CHROMIUM || "/usr/bin/chromium"

// Flags that work in a root container with no GPU, a small /dev/shm and no network.
const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-dev-shm-usage",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
]

/** Debian's Chromium, installed with apt-get when missing (CI runs as root); never a browser download. */
export function ensureChromium(log: (message: string) => void): string {
  if (fs.existsSync(CHROMIUM)) return CHROMIUM
  if (typeof process.getuid !== "function" || process.getuid() !== 0) {
    throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium) or set PCP_CHROMIUM`)
  }
  log("installing Debian's chromium (apt-get)")
  const env = repoEnv({ DEBIAN_FRONTEND: "noninteractive" })
  execFileSync("apt-get", ["update", "-qq"], { env, stdio: "ignore" })
  execFileSync("apt-get", ["install", "-y", "-qq", "chromium"], { env, stdio: "ignore" })
  if (!fs.existsSync(CHROMIUM)) throw new Error(`apt-get install chromium did not provide ${CHROMIUM}`)
  return CHROMIUM
}

export function launchChromium(executablePath: string): Promise<Browser> {
  return chromium.launch({ executablePath, headless: true, args: CHROMIUM_ARGS })
}
