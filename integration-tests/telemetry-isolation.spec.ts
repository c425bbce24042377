import crypto from "crypto"
import fs from "fs"
import http from "http"
import os from "os"
import path from "path"
import { spawn } from "child_process"
import { AddressInfo } from "net"
import { testEnv } from "./helpers/env"
import { createApi } from "./helpers/http"
import { startExtraBackend, stopExtraBackends } from "./helpers/backend"

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

const PROBE = path.resolve(__dirname, "fixtures/process-probe/index.js")
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
})
