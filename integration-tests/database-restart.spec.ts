import crypto from "crypto"
import fs from "fs"
import os from "os"
import path from "path"
import { spawn, ChildProcessByStdio } from "child_process"
import type { Readable, Writable } from "stream"
import { Client } from "pg"
import { Api, HttpResponse, createApi } from "./helpers/http"
import { psp } from "./helpers/fake-psp"
import { base, sleep, waitFor } from "./helpers/payments"
import { testEnv } from "./helpers/env"
import { MedusaHost, medusaHost as host } from "./helpers/backend"
import { repoEnv } from "./helpers/repo-env"

// PostgreSQL going away under load, and coming back. The spec runs its own
// embedded server (stopping the suite's would stop every other spec), migrates
// it, and starts a real backend on it. While storefront traffic runs — create,
// confirm, authorize, read, some with an Idempotency-Key — the server is shut
// down (fast: clients are disconnected) and started again on the same port and
// data. Meanwhile every answer is 200 or 503 with Medusa's error body, never a
// 500, and none takes longer than the options allow; the backend serves again
// by itself, without a restart; afterwards the provider and the database agree
// (the journal is reconciled).

interface PostgresLib {
  createDatabase(baseUrl: string, name: string): Promise<void>
  databaseUrl(baseUrl: string, name: string): string
}
// eslint-disable-next-line @typescript-eslint/no-var-requires
const postgres: PostgresLib = require(path.resolve(__dirname, "../scripts/lib/postgres.js"))

const POSTGRES_PROCESS = path.resolve(__dirname, "../scripts/lib/postgres-process.js")

/** The spec's own embedded server, in a process of its own (scripts/lib/postgres-process.js). */
class OwnPostgres {
  private lines: string[] = []
  private waiting: ((line: string) => void)[] = []
  private constructor(private readonly child: ChildProcessByStdio<Writable, Readable, null>) {
    let pending = ""
    child.stdout.on("data", (chunk: Buffer) => {
      pending += chunk.toString("utf8")
      let newline
      while ((newline = pending.indexOf("\n")) >= 0) {
        const line = pending.slice(0, newline)
        pending = pending.slice(newline + 1)
        const next = this.waiting.shift()
        if (next) next(line)
        else this.lines.push(line)
      }
    })
  }

  static async start(dataDir: string): Promise<{ server: OwnPostgres; baseUrl: string }> {
    const child = spawn(process.execPath, [POSTGRES_PROCESS, dataDir], {
      env: repoEnv(),
      stdio: ["pipe", "pipe", "inherit"],
    })
    const server = new OwnPostgres(child)
    const { baseUrl } = JSON.parse(await server.nextLine())
    return { server, baseUrl }
  }

  private nextLine(): Promise<string> {
    const ready = this.lines.shift()
    if (ready !== undefined) return Promise.resolve(ready)
    return new Promise((resolve) => this.waiting.push(resolve))
  }

  async command(what: "stop" | "start"): Promise<void> {
    this.child.stdin.write(`${what}\n`)
    const answer = await this.nextLine()
    if (answer !== `${what === "stop" ? "stopped" : "started"}`) throw new Error(`postgres-process: ${answer}`)
  }

  async end(): Promise<void> {
    if (this.child.exitCode !== null) return
    const exited = new Promise((resolve) => this.child.once("exit", resolve))
    this.child.kill("SIGTERM")
    await exited
  }
}

// finder_settle_ms: a create whose commit the outage cut off leaves an uncertain
// initiate, which the finder may only conclude on after that window (5 minutes
// by default); the spec waits 30 s for the journal to close.
const OPTIONS = { provider_timeout_ms: 1000, lock_timeout_ms: 2000, reconcile_interval_ms: 500, finder_settle_ms: 1000 }
/** The longest an answer may take: the wait for the lock plus provider calls, with room for the load here. */
const SLOWEST_ANSWER_MS = 2 * (OPTIONS.lock_timeout_ms + 2 * OPTIONS.provider_timeout_ms)
const OUTAGE_MS = 4000
const WORKERS = 6

/** The spec's own connection; the server going away must not become an unhandled error. */
function connect(url: string): Client {
  const client = new Client({ connectionString: url })
  client.on("error", () => undefined)
  return client
}

type Answer = { status: number; type?: string; code?: string; message?: string; ms: number; at: number; what: string }

describe("PostgreSQL going away under load, and coming back", () => {
  let dataRoot: string
  let pg: OwnPostgres
  let db: Client
  let dbUrl: string
  let backend: Awaited<ReturnType<MedusaHost["startBackend"]>>
  let shop: Api
  let regionId: string

  beforeAll(async () => {
    dataRoot = fs.mkdtempSync(path.join(os.tmpdir(), "pcp-restart-"))
    fs.chmodSync(dataRoot, 0o777)
    const started = await OwnPostgres.start(path.join(dataRoot, "data"))
    pg = started.server
    const name = `pcp_restart_${crypto.randomBytes(3).toString("hex")}`
    await postgres.createDatabase(started.baseUrl, name)
    const url = postgres.databaseUrl(started.baseUrl, name)
    dbUrl = url
    await host.runMigrations({ hostDir: testEnv().hostDir, databaseUrl: url })
    db = connect(url)
    await db.connect()
    const token = `pcp_restart_${crypto.randomBytes(8).toString("hex")}`
    await db.query(`INSERT INTO "user" (id, email, api_token, role) VALUES ('usr_restart', 'restart@pcp.test', $1, 'admin')`, [token])
    backend = await host.startBackend({
      hostDir: testEnv().hostDir,
      databaseUrl: url,
      port: 0,
      env: { PAYMENT_COLLECTIONS_OPTIONS: JSON.stringify(OPTIONS), TEST_PAY_PSP_URL: testEnv().pspUrl },
      logFile: process.env.PCP_BACKEND_LOG || undefined,
    })
    shop = createApi(backend.url)
    const admin = createApi(backend.url, { "x-medusa-access-token": token })
    const region = await admin.post("/admin/regions", {
      name: "Restart region",
      currency_code: "usd",
      tax_rate: 0,
      payment_providers: ["manual", "test-pay"],
      fulfillment_providers: [],
      countries: [],
    })
    expect(region.status).toBe(200)
    regionId = region.body.region.id
  }, 240_000)

  afterAll(async () => {
    await backend?.stop()
    await db?.end().catch(() => undefined)
    await pg?.end()
    fs.rmSync(dataRoot, { recursive: true, force: true })
  }, 60_000)

  async function newCollection(): Promise<string> {
    const id = `paycol_restart_${crypto.randomBytes(8).toString("hex")}`
    await db.query(
      `INSERT INTO payment_collection (id, type, status, amount, region_id, currency_code, created_by)
       VALUES ($1, 'order_edit', 'not_paid', 1000, $2, 'usd', 'restart-spec')`,
      [id, regionId]
    )
    return id
  }

  function record(answers: Answer[], what: string, started: number, res: HttpResponse) {
    answers.push({ status: res.status, type: res.body?.type, code: res.body?.code, message: res.body?.message, ms: Date.now() - started, at: Date.now(), what })
  }

  /** A storefront paying one collection: create (test-pay), the shopper confirms, authorize, read. */
  async function payOne(collectionId: string, answers: Answer[], key: string) {
    let started = Date.now()
    const created = await shop.post(`${base(collectionId)}/sessions`, { provider_id: "test-pay" }, { headers: { "idempotency-key": key } })
    record(answers, "create", started, created)
    if (created.status !== 200) return
    const session = created.body.payment_collection.payment_sessions[0]
    await psp.confirmSession(session)
    started = Date.now()
    record(answers, "authorize", started, await shop.post(`${base(collectionId)}/sessions/${session.id}/authorize`))
    started = Date.now()
    record(answers, "get", started, await shop.get(base(collectionId)))
  }

  it(
    "answers 200 or 503 (never 500, never past the timeouts) while the database is down, serves again by itself, and reconciles",
    async () => {
      // Collections are made up front: the spec's own inserts must not meet the outage.
      const pool = await Promise.all(Array.from({ length: 400 }, () => newCollection()))
      const used: string[] = []
      const answers: Answer[] = []
      let running = true
      const worker = async (w: number) => {
        for (let i = 0; running && pool.length; i++) {
          const collectionId = pool.shift()!
          used.push(collectionId)
          await payOne(collectionId, answers, `restart-${w}-${i}`).catch((err) =>
            answers.push({ status: -1, type: String(err.message), ms: 0, at: Date.now(), what: "network" })
          )
        }
      }
      const load = Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)))

      await sleep(1500)
      const stoppedAt = Date.now()
      await pg.command("stop")
      await sleep(OUTAGE_MS)
      await pg.command("start")
      const backAt = Date.now()
      // The spec's own connection went down with the server too.
      await db.end().catch(() => undefined)
      db = connect(dbUrl)
      await db.connect()

      // Served again: a fresh collection is paid end to end, by the same backend process.
      const recovered = await waitFor(
        "the backend to serve again",
        async () => {
          const probe: Answer[] = []
          await payOne(await newCollection(), probe, `restart-probe-${Date.now()}`)
          return probe.length === 3 && probe.every((a) => a.status === 200) ? Date.now() : undefined
        },
        { timeoutMs: 60_000, intervalMs: 250 }
      )
      running = false
      await load

      const during = answers.filter((a) => a.at >= stoppedAt && a.at <= backAt + SLOWEST_ANSWER_MS)
      const statuses = [...new Set(answers.map((a) => a.status))].sort()
      console.log(
        `database restart: ${answers.length} answers, ${answers.filter((a) => a.status === 503).length} × 503 ` +
          `(${during.length} answered during the outage), served again ${(recovered as number) - backAt} ms after the server was back; statuses ${statuses}`
      )
      expect(answers.filter((a) => a.status === 503).length).toBeGreaterThan(0)
      expect(answers.filter((a) => a.status !== 200 && a.status !== 503)).toEqual([])
      for (const unavailable of answers.filter((a) => a.status === 503)) {
        expect(unavailable).toMatchObject({ code: "database_unavailable", type: expect.any(String) })
      }
      expect(answers.filter((a) => a.ms > SLOWEST_ANSWER_MS)).toEqual([])
      expect(() => process.kill(backend.pid, 0)).not.toThrow()

      // Afterwards the provider and the database agree, by the reconciler where a request could not finish.
      await waitFor(
        "the journal to have no open row",
        async () => {
          const { rows } = await db.query(
            `SELECT count(*)::int AS open FROM payment_collection_attempt
              WHERE payment_collection_id = ANY($1) AND state IN ('started', 'answered', 'uncertain', 'needs_attention')`,
            [used]
          )
          return rows[0].open === 0
        },
        { timeoutMs: 30_000, intervalMs: 250 }
      )
      // No process died: every call's answer reached the backend, so none may be
      // left undecided (an answer the journal missed while the server was away
      // is written before the reconciler judges its row).
      const { rows: undecided } = await db.query(
        `SELECT id, operation FROM payment_collection_attempt
          WHERE payment_collection_id = ANY($1) AND state = 'unknown'`,
        [used]
      )
      expect(undecided).toEqual([])
      const { rows: sessions } = await db.query(
        `SELECT ps.*, l.payment_collection_id FROM payment_session ps
           JOIN payment_collection_sessions l ON l.payment_session_id = ps.id
          WHERE l.payment_collection_id = ANY($1)`,
        [used]
      )
      const named = new Set(sessions.map((s) => s.data.id))
      const usedSet = new Set(used)
      const live = (await psp.liveIntents()).filter((i) => usedSet.has(i.resource_id!)).map((i) => i.id)
      expect(live.filter((id) => !named.has(id))).toEqual([])
      const canceled = []
      for (const session of sessions) {
        if ((await psp.intent(session.data.id)).status === "canceled") canceled.push(session.id)
      }
      expect(canceled).toEqual([])
      // Every authorization the provider reported to the backend is recorded.
      const reported = (await psp.history({ method: "authorizePayment" }))
        .filter((call) => call.outcome === "ok" && usedSet.has(call.resourceId!))
        .map((call) => call.intentId)
      const recorded = new Set(sessions.filter((s) => s.status === "authorized").map((s) => s.data.id))
      expect([...new Set(reported)].filter((id) => !recorded.has(id))).toEqual([])
    },
    240_000
  )
})
