import fs from "fs"
import os from "os"
import path from "path"
import { ChildProcessWithoutNullStreams, execFile, spawn } from "child_process"
import { freePort } from "./helpers/net"

// The commands the README gives a newcomer, run the way a newcomer runs them:
// no DATABASE_URL (so the embedded PostgreSQL), and the user's own config home
// (here an empty one of the test's: nothing may be written there). Where the
// README shows what a command prints, the output is compared with it, and the
// curl lines are run as printed.
//
// `npm start` and `npm run bench` are `npm run build && node scripts/<x>.js`;
// the suite runs on a fresh build already (and rebuilding dist/ would pull it
// from under the shared backend), so the scripts are run after checking that
// this is still what the npm scripts do.

const REPO_ROOT = path.resolve(__dirname, "..")
const README = fs.readFileSync(path.join(REPO_ROOT, "README.md"), "utf8")
const NPM_SCRIPTS = (JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as {
  scripts: Record<string, string>
}).scripts
const README_PORT = "9000"
const WELCOME_FIRST = "medusa-plugin-payment-collections demo is up on "
const WELCOME_LAST = "Ctrl+C stops the backend"

const tempDirs: string[] = []

function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  // As root, embedded PostgreSQL runs as the "postgres" user, who must enter it.
  fs.chmodSync(dir, 0o777)
  tempDirs.push(dir)
  return dir
}

/**
 * A newcomer's shell: no DATABASE_URL, none of the repository's settings or
 * jest's, and the user's config home in `configHome`.
 */
function newcomerEnv(configHome: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env }
  for (const name of ["DATABASE_URL", "XDG_CONFIG_HOME", "MEDUSA_DISABLE_TELEMETRY", "NODE_ENV", "JEST_WORKER_ID"]) {
    delete env[name]
  }
  return { ...env, XDG_CONFIG_HOME: configHome, ...extra }
}

/** Every file and folder under dir. */
function listTree(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true }).map(String).sort()
}

/** A command started in its own process group (as a shell's job), with its output kept. */
class Command {
  /** stdout and stderr as they came */
  output = ""
  stdout = ""
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  private readonly child: ChildProcessWithoutNullStreams

  constructor(args: string[], env: NodeJS.ProcessEnv) {
    this.child = spawn(process.execPath, args, { cwd: REPO_ROOT, env, detached: true })
    this.child.stdout.on("data", (c: Buffer) => {
      this.output += c.toString("utf8")
      this.stdout += c.toString("utf8")
    })
    this.child.stderr.on("data", (c: Buffer) => (this.output += c.toString("utf8")))
    this.exit = new Promise((resolve) => this.child.on("exit", (code, signal) => resolve({ code, signal })))
  }

  get pid(): number {
    return this.child.pid as number
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null
  }

  /** Resolves once the output contains `text`; rejects when the command ends or `ms` pass first. */
  async waitFor(text: string, ms: number): Promise<void> {
    const deadline = Date.now() + ms
    while (!this.output.includes(text)) {
      if (!this.running) throw new Error(`the command ended before printing "${text}":\n${this.output.slice(-6000)}`)
      if (Date.now() > deadline) throw new Error(`no "${text}" within ${ms / 1000} s:\n${this.output.slice(-6000)}`)
      await new Promise((resolve) => setTimeout(resolve, 250))
    }
  }

  /** Ctrl+C: SIGINT to the whole process group, as a terminal sends it. */
  interrupt(): void {
    process.kill(-this.pid, "SIGINT")
  }

  /** Ends the group, whatever is left of it (after a failed test). */
  kill(): void {
    try {
      process.kill(-this.pid, "SIGKILL")
    } catch {
      // gone already
    }
  }
}

/** The pids of every process under `pid` (Linux /proc). */
function descendants(pid: number): number[] {
  const parents = new Map<number, number>()
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8")
      // pid (comm) state ppid ...; comm may hold spaces and parentheses.
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1])
      parents.set(Number(entry), ppid)
    } catch {
      // ended meanwhile
    }
  }
  const found: number[] = []
  const walk = (parent: number) => {
    for (const [child, ppid] of parents) {
      if (ppid === parent) {
        found.push(child)
        walk(child)
      }
    }
  }
  walk(pid)
  return found
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** The lines of the README's fenced block whose first line starts with `firstLine`. */
function readmeBlock(firstLine: string): string[] {
  const blocks = [...README.matchAll(/```[a-z]*\n([\s\S]*?)```/g)].map((m) => m[1].replace(/\n$/, "").split("\n"))
  const block = blocks.find((lines) => lines[0].startsWith(firstLine))
  if (!block) throw new Error(`README.md has no fenced block starting with "${firstLine}"`)
  return block
}

/** A README line as a pattern: `<seconds>` and `<order id>` stand for what changes from run to run. */
function linePattern(line: string): RegExp {
  const escaped = line.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
  return new RegExp(`^${escaped.replace(/<seconds>/g, "\\d+\\.\\d").replace(/<order id>/g, "order_[0-9A-Z]+")}$`)
}

/** `promise`, or a rejection naming `what` after `ms`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still running after ${ms / 1000} s`)), ms)
  })
  try {
    return await Promise.race([promise, late])
  } finally {
    clearTimeout(timer)
  }
}

function sh(line: string): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile("sh", ["-c", line], { cwd: REPO_ROOT, timeout: 30_000 }, (err, stdout) => {
      resolve({ code: err ? Number((err as NodeJS.ErrnoException).code ?? 1) : 0, stdout })
    })
  })
}

describe("the README's commands, as a newcomer runs them", () => {
  const started: Command[] = []

  afterAll(() => {
    for (const command of started) command.kill()
    for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true })
  })

  it(
    "npm start: on a fresh embedded database it prints what the README shows, serves the seeded collections, the " +
      "dashboard and its login, answers the curl lines as printed, and Ctrl+C stops it leaving no process behind",
    async () => {
      expect(NPM_SCRIPTS.start).toBe("npm run build && node scripts/start.js")
      const demoDir = tempDir("pcp-demo-")
      const userConfigHome = tempDir("pcp-user-config-")
      const port = await freePort()
      const url = `http://localhost:${port}`
      const demo = new Command(["scripts/start.js"], newcomerEnv(userConfigHome, { DEMO_DIR: demoDir, PORT: String(port) }))
      started.push(demo)

      // The first start on a machine builds the dashboard (a minute or two).
      await demo.waitFor(WELCOME_LAST, 360_000)
      const printed = demo.output
        .split("\n")
        .map((line) => line.split(demoDir).join(".medusa-demo").split(`:${port}`).join(`:${README_PORT}`))
      const first = printed.findIndex((line) => line.startsWith(WELCOME_FIRST))
      const last = printed.findIndex((line, i) => i > first && line.startsWith(WELCOME_LAST))
      const welcome = printed.slice(first, last + 1)

      // What the README shows, line for line.
      const shown = readmeBlock(WELCOME_FIRST)
      expect(welcome).toHaveLength(shown.length)
      shown.forEach((line, i) => expect(welcome[i]).toMatch(linePattern(line)))

      const collections = welcome
        .map((line) => /^ {2}(paycol_\w+) {2}amount (\d+) {2}(.+)$/.exec(line))
        .filter((m): m is RegExpExecArray => m !== null)
        .map(([, id, amount, description]) => ({ id, amount: Number(amount), description }))
      const [editedOrder, plainOrder] = welcome
        .map((line) => /\/app\/a\/orders\/(order_\w+)$/.exec(line)?.[1])
        .filter((id): id is string => Boolean(id))
      const [, email, password] = /log in as (\S+) \/ (\S+)$/.exec(welcome[2]) ?? []
      const [, adminToken] = /x-medusa-access-token\): (\S+)$/.exec(welcome.find((l) => l.startsWith("Admin API token")) ?? "") ?? []
      expect(collections.length).toBeGreaterThanOrEqual(1)

      for (const c of collections) {
        const res = await fetch(`${url}/store/payment-collections/${c.id}`)
        expect(res.status).toBe(200)
        expect(res.headers.get("x-payment-collections-plugin")).toMatch(/^medusa-plugin-payment-collections@/)
        const { payment_collection } = (await res.json()) as { payment_collection: Record<string, unknown> }
        expect(payment_collection).toMatchObject({ id: c.id, amount: c.amount, description: c.description })
      }

      const dashboard = await fetch(`${url}/app`)
      expect(dashboard.status).toBe(200)
      expect(dashboard.headers.get("content-type")).toMatch(/^text\/html/)
      const html = await dashboard.text()
      expect(html).toContain('<div id="root">')
      expect(html).toMatch(/<script[^>]+src="\/app\/main\.[0-9a-f]+\.js"/)
      const mainScript = await fetch(`${url}${/src="(\/app\/main\.[0-9a-f]+\.js)"/.exec(html)?.[1]}`)
      expect(mainScript.status).toBe(200)
      expect((await fetch(`${url}/app/a/orders/${editedOrder}`)).status).toBe(200)

      // The printed login works (the dashboard logs in through this route).
      const login = await fetch(`${url}/admin/auth`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ email, password }),
      })
      expect(login.status).toBe(200)
      expect(((await login.json()) as { user: { email: string } }).user.email).toBe(email)

      // The printed orders: one whose edit was paid through manual and test-pay, one without edits.
      const ordersCollections = async (orderId: string) => {
        const res = await fetch(`${url}/admin/orders/${orderId}/payment-collections`, {
          headers: { "x-medusa-access-token": adminToken },
        })
        expect(res.status).toBe(200)
        return ((await res.json()) as { payment_collections: { payment_sessions?: { provider_id: string }[] }[] })
          .payment_collections
      }
      const paid = await ordersCollections(editedOrder)
      expect(paid.flatMap((c) => (c.payment_sessions ?? []).map((s) => s.provider_id)).sort()).toEqual(
        expect.arrayContaining(["manual", "test-pay"])
      )
      expect(await ordersCollections(plainOrder)).toEqual([])

      // The curl lines, pasted as printed (the same lines as the README's, the port aside).
      const curlLines = demo.output
        .split("\n")
        .map((line) => line.trim())
        .filter((line) => line.startsWith("curl "))
      expect(curlLines).toEqual(
        shown.map((line) => line.trim()).filter((l) => l.startsWith("curl ")).map((l) => l.split(`:${README_PORT}`).join(`:${port}`))
      )
      const [createLine, getLine, providersLine] = curlLines
      const created = await sh(createLine)
      expect(created.code).toBe(0)
      const afterCreate = JSON.parse(created.stdout).payment_collection
      expect(afterCreate).toMatchObject({ id: collections[0].id, payment_sessions: [expect.objectContaining({ provider_id: "manual" })] })
      const read = await sh(getLine)
      expect(read.code).toBe(0)
      expect(JSON.parse(read.stdout).payment_collection).toMatchObject({
        id: collections[0].id,
        payment_sessions: [expect.objectContaining({ id: afterCreate.payment_sessions[0].id })],
      })
      const providers = await sh(providersLine)
      expect(providers.code).toBe(0)
      expect(JSON.stringify(JSON.parse(providers.stdout))).toContain('"manual"')

      // Ctrl+C.
      const children = descendants(demo.pid)
      expect(children.length).toBeGreaterThanOrEqual(3) // PostgreSQL, the fake PSP, the backend
      demo.interrupt()
      const exit = await within(demo.exit, 60_000, "npm start after SIGINT")
      expect(exit).toEqual({ code: 0, signal: null })
      await new Promise((resolve) => setTimeout(resolve, 1000))
      expect(children.filter(isAlive)).toEqual([])
      expect(fs.existsSync(path.join(demoDir, "pgdata", "postmaster.pid"))).toBe(false)
      await expect(fetch(`${url}/health`)).rejects.toThrow()
      // Medusa never wrote into the user's config home.
      expect(listTree(userConfigHome)).toEqual([])
    },
    480_000
  )

  it(
    "npm run bench -- --duration 1 --rounds 1 --cases get: measures core and the plugin and ends with a BENCH_JSON line",
    async () => {
      expect(NPM_SCRIPTS.bench).toBe("npm run build && node scripts/bench.js")
      expect(README).toContain("npm run bench -- --duration 1 --rounds 1 --cases get")
      const userConfigHome = tempDir("pcp-user-config-")
      const bench = new Command(
        ["scripts/bench.js", "--duration", "1", "--rounds", "1", "--cases", "get"],
        newcomerEnv(userConfigHome)
      )
      started.push(bench)

      const exit = await within(bench.exit, 420_000, "npm run bench")
      expect({ ...exit, output: exit.code === 0 ? "" : bench.output.slice(-6000) }).toEqual({ code: 0, signal: null, output: "" })
      const lines = bench.stdout.trim().split("\n")
      const last = lines[lines.length - 1]
      expect(last.startsWith("BENCH_JSON ")).toBe(true)
      const summary = JSON.parse(last.slice("BENCH_JSON ".length)) as {
        durationSeconds: number
        rounds: number
        postgres: string
        cases: { id: string; core: { rps: number }; plugin: { rps: number } }[]
      }
      expect(summary).toMatchObject({ durationSeconds: 1, rounds: 1, postgres: "embedded" })
      expect(summary.cases.map((c) => c.id)).toEqual(["get"])
      expect(summary.cases[0].core.rps).toBeGreaterThan(0)
      expect(summary.cases[0].plugin.rps).toBeGreaterThan(0)
      expect(listTree(userConfigHome)).toEqual([])
    },
    480_000
  )
})
