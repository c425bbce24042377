import crypto from "crypto"
import fs from "fs"
import http from "http"
import os from "os"
import path from "path"
import { execFileSync, spawn } from "child_process"
import { AddressInfo } from "net"
import { testEnv } from "./helpers/env"
import { createApi } from "./helpers/http"
import { startExtraBackend, stopExtraBackends } from "./helpers/backend"
import { repoSettings } from "./helpers/repo-env"

// A developer machine where Medusa ran before with telemetry on: the user's
// config home holds medusa/config.json with telemetry enabled and a large
// outbox of unsent events (medusa/events.json). Medusa's CLI then forks a
// detached sender (medusa-telemetry/dist/util/send.js) that loads the whole
// outbox, whatever MEDUSA_DISABLE_TELEMETRY says. The repository starts its
// Medusa processes with a config home of its own, so none of that happens.
//
// Two witnesses: a preload (fixtures/process-probe) records every Node process
// started under the backend, however short-lived, and MEDUSA_TELEMETRY_HOST
// points any sender at a local sink, so nothing leaves the machine even if the
// isolation broke. The user's folder is compared entry by entry: content,
// size, mode, modification and access times (every time is set 3 days back
// first, so that a mere read moves the access time under relatime).
//
// Not only the Medusa processes: jest itself imports @medusajs/medusa in the
// processes that run the test files (its own with --runInBand, else its
// workers), and medusa-telemetry's store rewrites <config home>/medusa/config.json
// when it is constructed. So jest is run here too, from a user's shell, the way
// `npm test` (scripts/with-repo-env.js) and `npx jest` (jest.config.js) start it,
// and so is a whole admin-host preparation (npm, medusa-admin build).

interface HomeEntry {
  mode: number
  size: number
  mtimeMs: number
  atimeMs: number
}

interface UserHome {
  dir: string
  /** Environment of a user whose HOME and XDG_CONFIG_HOME both lead to this store */
  env: Record<string, string>
  /** Ids of the events in the outbox */
  eventIds: string[]
  /** snapshot() as made, taken without reading a file */
  initial: HomeSnapshot
  /** Every entry under dir: stat, then each file's sha256 */
  snapshot(): HomeSnapshot
}

type HomeSnapshot = Record<string, HomeEntry & { sha256?: string }>

interface ProbeRecord {
  pid: number
  ppid: number
  argv: string[]
}

interface TelemetrySink {
  url: string
  /** Every request received, with the ids of the events in its batch */
  requests: { method: string; url: string; eventIds: string[] }[]
  close(): Promise<void>
}

interface MedusaHost {
  runMigrations(options: { hostDir: string; databaseUrl: string; env?: Record<string, string> }): Promise<void>
  MEDUSA_CLI: string
}
// Plain CommonJS shared with the scripts; typed here instead of allowJs.
// eslint-disable-next-line @typescript-eslint/no-var-requires
const host: MedusaHost = require(path.resolve(__dirname, "../scripts/lib/medusa-host.js"))

const REPO_ROOT = path.resolve(__dirname, "..")
const PRIVATE_CONFIG_HOME = path.join(REPO_ROOT, ".medusa-config")
const PROBE = path.resolve(__dirname, "fixtures/process-probe/index.js")
// Test files of a jest of their own (fixtures/jest-imports-medusa), which import @medusajs/medusa.
const JEST_PROBE_FILES = path.join(REPO_ROOT, "integration-tests/fixtures/jest-imports-medusa/*.probe.js")
const JEST_BIN = path.join(REPO_ROOT, "node_modules/jest/bin/jest.js")
const WITH_REPO_ENV = path.join(REPO_ROOT, "scripts/with-repo-env.js")
const ADMIN_HOST = path.join(REPO_ROOT, "scripts/lib/admin-host.js")
const THREE_DAYS_AGO = new Date(Date.now() - 3 * 24 * 60 * 60 * 1000)
const SENDER = /medusa-telemetry/
// A sender forks when its parent exits; it is running within milliseconds.
const AFTER_EXIT_MS = 3000

const tempDirs: string[] = []
const probeLogs: string[] = []

function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  tempDirs.push(dir)
  return dir
}

function walk(dir: string, rel = ""): string[] {
  return fs.readdirSync(path.join(dir, rel)).flatMap((name) => {
    const child = path.join(rel, name)
    return fs.statSync(path.join(dir, child)).isDirectory() ? [child, ...walk(dir, child)] : [child]
  })
}

/** A user's home with a Medusa telemetry store: telemetry on, `outboxBytes` of unsent events. */
function makeUserHome(outboxBytes: number): UserHome {
  const dir = tempDir("pcp-user-home-")
  const store = path.join(dir, ".config", "medusa")
  fs.mkdirSync(store, { recursive: true })
  fs.writeFileSync(
    path.join(store, "config.json"),
    JSON.stringify({ telemetry: { enabled: true, machine_id: `pcp-test-${crypto.randomUUID()}` } }, null, "\t")
  )
  const eventIds: string[] = []
  const lines: string[] = []
  let size = 0
  const padding = "x".repeat(900)
  while (size < outboxBytes) {
    const id = `te_pcp_${eventIds.length}`
    eventIds.push(id)
    const line = JSON.stringify({ id, type: "CLI_START", properties: { padding }, timestamp: new Date() }) + "\n"
    lines.push(line)
    size += line.length
  }
  fs.writeFileSync(path.join(store, "events.json"), lines.join(""))

  const sha256 = (rel: string) => crypto.createHash("sha256").update(fs.readFileSync(path.join(dir, rel))).digest("hex")
  const isFile = (rel: string) => fs.statSync(path.join(dir, rel)).isFile()
  const stats = (): HomeSnapshot =>
    Object.fromEntries(
      walk(dir).map((rel) => {
        const s = fs.statSync(path.join(dir, rel))
        return [rel, { mode: s.mode, size: s.size, mtimeMs: s.mtimeMs, atimeMs: s.atimeMs }]
      })
    )
  // Hashes first, times last: hashing reads the files and would move their access times.
  const hashes = Object.fromEntries(walk(dir).filter(isFile).map((rel) => [rel, sha256(rel)]))
  for (const rel of [...walk(dir).reverse(), ""]) fs.utimesSync(path.join(dir, rel), THREE_DAYS_AGO, THREE_DAYS_AGO)
  const initial = stats()
  for (const [rel, hash] of Object.entries(hashes)) Object.assign(initial[rel], { sha256: hash })

  return {
    dir,
    env: { HOME: dir, XDG_CONFIG_HOME: path.join(dir, ".config") },
    eventIds,
    initial,
    snapshot() {
      const now = stats()
      for (const rel of Object.keys(now)) if (isFile(rel)) Object.assign(now[rel], { sha256: sha256(rel) })
      return now
    },
  }
}

/** The entries of a snapshot that are in the user's config home (.config). */
function inConfigHome(snapshot: HomeSnapshot): HomeSnapshot {
  return Object.fromEntries(Object.entries(snapshot).filter(([rel]) => rel === ".config" || rel.startsWith(`.config${path.sep}`)))
}

/** Where medusa-telemetry's sender posts when MEDUSA_TELEMETRY_HOST names it; answers 200. */
async function startTelemetrySink(): Promise<TelemetrySink> {
  const requests: TelemetrySink["requests"] = []
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on("data", (c: Buffer) => chunks.push(c))
    req.on("end", () => {
      let eventIds: string[] = []
      try {
        eventIds = (JSON.parse(Buffer.concat(chunks).toString("utf8")).batch ?? []).map((e: { id: string }) => e.id)
      } catch {
        eventIds = []
      }
      requests.push({ method: req.method ?? "", url: req.url ?? "", eventIds })
      res.writeHead(200, { "content-type": "application/json" }).end("{}")
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  }
}

function newProbeLog(): string {
  const log = path.join(tempDir("pcp-probe-"), "processes.jsonl")
  probeLogs.push(log)
  return log
}

function probeEnv(log: string): Record<string, string> {
  return {
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --require ${PROBE}`.trim(),
    PCP_PROCESS_PROBE_LOG: log,
  }
}

function probeRecords(log: string): ProbeRecord[] {
  if (!fs.existsSync(log)) return []
  return fs
    .readFileSync(log, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as ProbeRecord)
}

/**
 * A user's shell in `home`: none of the repository's settings, nor jest's. npm
 * keeps using the user's cache and configuration (read, not written), so that
 * it installs from the cache instead of downloading into the planted home.
 */
function userShellEnv(home: UserHome, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env }
  for (const name of [...Object.keys(repoSettings()), "NODE_ENV", "JEST_WORKER_ID"]) delete env[name]
  const npmConfig = (key: string) => execFileSync("npm", ["config", "get", key], { encoding: "utf8" }).trim()
  return {
    ...env,
    npm_config_cache: npmConfig("cache"),
    npm_config_userconfig: npmConfig("userconfig"),
    ...home.env,
    ...extra,
  }
}

/** Runs node with `args`; resolves with its exit code and output. */
function runNode(args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<{ pid: number; code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: REPO_ROOT, env, stdio: ["ignore", "pipe", "pipe"] })
    let output = ""
    child.stdout.on("data", (c: Buffer) => (output = (output + c.toString("utf8")).slice(-20_000)))
    child.stderr.on("data", (c: Buffer) => (output = (output + c.toString("utf8")).slice(-20_000)))
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs)
    child.on("error", reject)
    child.on("close", (code) => {
      clearTimeout(timer)
      resolve({ pid: child.pid as number, code, output })
    })
  })
}

interface JestProbeRecord {
  pid: number
  file: string
  /** Where medusa-telemetry's store is in the process that ran the file */
  store: string
}

/** jest with `args` on the fixtures/jest-imports-medusa test files, from `env`; answers what those files recorded. */
async function runJestOnProbeFiles(
  command: string[],
  env: NodeJS.ProcessEnv
): Promise<{ pid: number; code: number | null; output: string; records: JestProbeRecord[] }> {
  const records = path.join(tempDir("pcp-jest-probe-"), "records.jsonl")
  // A cache of its own: with no timings of earlier runs jest does not choose to run two files in band.
  const args = [...command, "--selectProjects", "unit", "--testMatch", JEST_PROBE_FILES, "--cacheDirectory", tempDir("pcp-jest-cache-")]
  const result = await runNode(args, { ...env, PCP_JEST_PROBE_LOG: records }, 180_000)
  const lines = fs.existsSync(records) ? fs.readFileSync(records, "utf8").split("\n").filter(Boolean) : []
  return { ...result, records: lines.map((line) => JSON.parse(line) as JestProbeRecord) }
}

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** Senders are detached from the process that forked them: any still running is ended here. */
function endSenders(records: ProbeRecord[]): void {
  for (const record of records) {
    if (record.argv.some((a) => SENDER.test(a)) && isAlive(record.pid)) process.kill(record.pid, "SIGKILL")
  }
}

async function waitFor(condition: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms
  while (!condition()) {
    if (Date.now() > deadline) return false
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return true
}

describe("Medusa processes started by the repository and the user's Medusa telemetry store", () => {
  let sink: TelemetrySink

  beforeAll(async () => {
    sink = await startTelemetrySink()
  })

  afterAll(async () => {
    await stopExtraBackends()
    for (const log of probeLogs) endSenders(probeRecords(log))
    await sink.close()
    for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true })
  })

  it(
    "medusa migrations run and medusa start, the repository's way, fork no telemetry sender and leave a store " +
      "with telemetry on and a 32 MB outbox untouched (not read, not written)",
    async () => {
      const home = makeUserHome(32 * 1024 * 1024)
      const log = newProbeLog()
      const env = { ...home.env, ...probeEnv(log), MEDUSA_TELEMETRY_HOST: sink.url }
      const requestsBefore = sink.requests.length

      await host.runMigrations({ hostDir: testEnv().hostDir, databaseUrl: testEnv().databaseUrl, env })
      const backend = await startExtraBackend({ env })
      const served = await createApi(backend.url).get("/store/payment-collections/paycol_missing")
      await backend.stop()
      await new Promise((resolve) => setTimeout(resolve, AFTER_EXIT_MS))

      const processes = probeRecords(log)
      // The probe saw both Medusa processes (so it would have seen a sender)...
      expect(processes.length).toBeGreaterThanOrEqual(2)
      expect(processes.map((p) => p.pid)).toContain(backend.pid)
      // ...and nothing else started, and nothing was sent.
      expect(processes.filter((p) => p.argv.some((a) => SENDER.test(a)))).toEqual([])
      expect(sink.requests.slice(requestsBefore)).toEqual([])
      expect(served.status).toBe(404)
      expect(served.headers["x-payment-collections-plugin"]).toMatch(/^medusa-plugin-payment-collections@/)
      expect(home.snapshot()).toEqual(home.initial)
    },
    240_000
  )

  it("the check sees a sender when there is one: Medusa's CLI run on that store as is forks one, which posts the outbox", async () => {
    const home = makeUserHome(200 * 1024)
    const log = newProbeLog()
    const requestsBefore = sink.requests.length

    // Not the repository's way: the user's own environment, as `npx medusa` would have it.
    const env = { ...process.env, ...home.env, ...probeEnv(log), MEDUSA_TELEMETRY_HOST: sink.url }
    const cli = spawn(host.MEDUSA_CLI, ["--version"], { cwd: testEnv().hostDir, env, stdio: "ignore" })
    await new Promise((resolve) => cli.on("close", resolve))
    const posted = await waitFor(() => sink.requests.length > requestsBefore, 30_000)

    const senders = probeRecords(log).filter((p) => p.argv.some((a) => SENDER.test(a)))
    endSenders(senders)
    expect(posted).toBe(true)
    expect(senders.length).toBeGreaterThanOrEqual(1)
    expect(senders[0].argv.join(" ")).toMatch(/medusa-telemetry\/dist\/util\/send\.js/)
    const postedIds = sink.requests.slice(requestsBefore).flatMap((r) => r.eventIds)
    expect(postedIds).toEqual(expect.arrayContaining(home.eventIds))
    expect(home.snapshot()).not.toEqual(home.initial)
  }, 60_000)

  it("this test process, jest's own, keeps Medusa's store in the repository's config home", () => {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const Configstore = require("configstore")
    // No defaults: this store neither reads nor writes its file.
    const store = new Configstore("medusa", undefined, { globalConfigPath: true })

    expect(process.env).toMatchObject(repoSettings())
    expect(process.env.XDG_CONFIG_HOME).toBe(PRIVATE_CONFIG_HOME)
    expect(store.path).toBe(path.join(PRIVATE_CONFIG_HOME, "medusa", "config.json"))
  })

  it(
    "jest started from a user's shell as `npm test` starts it (in band) and as `npx jest` does (two workers) " +
      "imports @medusajs/medusa with the repository's config home: the user's store with telemetry on is left " +
      "untouched and no sender is forked",
    async () => {
      const home = makeUserHome(1024 * 1024)
      const log = newProbeLog()
      const env = userShellEnv(home, { ...probeEnv(log), MEDUSA_TELEMETRY_HOST: sink.url })
      const requestsBefore = sink.requests.length

      const npmTest = await runJestOnProbeFiles([WITH_REPO_ENV, "jest", "--runInBand"], env)
      const npxJest = await runJestOnProbeFiles([JEST_BIN, "--maxWorkers=2"], env)
      await new Promise((resolve) => setTimeout(resolve, AFTER_EXIT_MS))

      const privateStore = path.join(PRIVATE_CONFIG_HOME, "medusa", "config.json")
      for (const run of [npmTest, npxJest]) {
        expect({ code: run.code, output: run.code === 0 ? "" : run.output }).toEqual({ code: 0, output: "" })
        expect(run.records.map((r) => path.basename(r.file)).sort()).toEqual(["first.probe.js", "second.probe.js"])
        expect(run.records.map((r) => r.store)).toEqual([privateStore, privateStore])
      }
      // In band: both files ran in one process, jest's own. With workers: in two other processes.
      expect(new Set(npmTest.records.map((r) => r.pid)).size).toBe(1)
      expect(npxJest.records.map((r) => r.pid)).not.toContain(npxJest.pid)
      const processes = probeRecords(log)
      expect(processes.filter((p) => p.argv.some((a) => /jest-worker/.test(a))).length).toBeGreaterThanOrEqual(1)
      expect(processes.filter((p) => p.argv.some((a) => SENDER.test(a)))).toEqual([])
      expect(sink.requests.slice(requestsBefore)).toEqual([])
      expect(home.snapshot()).toEqual(home.initial)
    },
    420_000
  )

  it("the check sees jest rewrite a store: jest run without the repository's config rewrites the user's config.json", async () => {
    const home = makeUserHome(64 * 1024)
    const log = newProbeLog()
    const env = userShellEnv(home, { ...probeEnv(log), MEDUSA_TELEMETRY_HOST: sink.url })
    const configFile = path.join(".config", "medusa", "config.json")

    // A config of its own instead of jest.config.js, and jest's own bin instead of scripts/with-repo-env.js.
    const ownConfig = JSON.stringify({ rootDir: REPO_ROOT, projects: [{ displayName: "unit", rootDir: REPO_ROOT, testEnvironment: "node" }] })
    const bare = await runJestOnProbeFiles([JEST_BIN, "--config", ownConfig, "--runInBand"], env)
    endSenders(probeRecords(log))

    expect({ code: bare.code, output: bare.code === 0 ? "" : bare.output }).toEqual({ code: 0, output: "" })
    expect(bare.records.map((r) => r.store)).toEqual([
      path.join(home.dir, configFile),
      path.join(home.dir, configFile),
    ])
    // configstore writes the file again (mode 0600) when the telemetry store is constructed.
    const after = home.snapshot()
    expect(after[configFile].mtimeMs).not.toBe(home.initial[configFile].mtimeMs)
    expect(after[configFile].mode & 0o777).toBe(0o600)
  }, 180_000)

  it(
    "a whole admin-host preparation started from a user's shell (npm ci, npm pack, npm install of the tarball, " +
      "medusa-admin build, each as needed) forks no sender and leaves the user's config home as it was",
    async () => {
      const home = makeUserHome(1024 * 1024)
      const log = newProbeLog()
      const env = userShellEnv(home, { ...probeEnv(log), MEDUSA_TELEMETRY_HOST: sink.url })
      const requestsBefore = sink.requests.length

      // The admin dashboard spec's host (.admin-host), kept between runs: on a fresh clone this installs and
      // builds it (several minutes), afterwards it packs and installs the plugin again and rebuilds what changed.
      const script =
        `require(${JSON.stringify(ADMIN_HOST)}).prepareAdminHost({ log: console.log })` +
        `.then((host) => console.log("timings " + JSON.stringify(host.timings)), (err) => { console.error(err.stack); process.exit(1) })`
      const prepared = await runNode(["-e", script], env, 1_140_000)
      await new Promise((resolve) => setTimeout(resolve, AFTER_EXIT_MS))

      expect({ code: prepared.code, output: prepared.code === 0 ? "" : prepared.output }).toEqual({ code: 0, output: "" })
      expect(prepared.output).toMatch(/timings \{.*"pack"/)
      const processes = probeRecords(log)
      // The probe saw npm (a Node program) among what the preparation started.
      expect(processes.some((p) => p.argv.some((a) => /npm-cli\.js|\/npm$/.test(a)))).toBe(true)
      expect(processes.filter((p) => p.argv.some((a) => SENDER.test(a)))).toEqual([])
      expect(sink.requests.slice(requestsBefore)).toEqual([])
      // The config home, file by file. (medusa-admin build's swc keeps its native plugin cache in the user's
      // cache home, ~/.cache/swc-native-0, like npm its cache: not Medusa's, and not looked at here.)
      expect(inConfigHome(home.snapshot())).toEqual(inConfigHome(home.initial))
      expect(Object.keys(inConfigHome(home.initial))).toContain(path.join(".config", "medusa", "events.json"))
    },
    1_200_000
  )
})
