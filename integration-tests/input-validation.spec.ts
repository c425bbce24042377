import { api, HttpResponse } from "./helpers/http"
import { createPaymentCollection, createRegion, db } from "./helpers/factories"
import { expectMedusaError, worldSnapshot } from "./helpers/collection-state"

// Every store endpoint of the Payment Collections group refuses bad input with
// a 4xx and Medusa's error body `{ type, message }` — never a 500 — and a
// refused request changes nothing: not the collection's row, sessions or
// payments, no table's row count, and no provider is called.

const BASE = "/store/payment-collections"
const enc = encodeURIComponent
/** Over express.json's 100 kB limit. */
const OVERSIZED = "x".repeat(110 * 1024)

type Fixture = {
  id: string
  /** The collection's two sessions: manual 400 and test-pay 600 (amount 1000). */
  manual: { id: string }
  testPay: { id: string }
}

/** A batch body that lists the fixture's sessions unchanged (valid; a no-op). */
function keepBatch(f: Fixture) {
  return {
    sessions: [
      { provider_id: "manual", amount: 400, session_id: f.manual.id },
      { provider_id: "test-pay", amount: 600, session_id: f.testPay.id },
    ],
  }
}

function post(path: string, body?: unknown): Promise<HttpResponse> {
  return api.post(path, body)
}

function raw(path: string, body: string, contentType = "application/json"): Promise<HttpResponse> {
  return api.raw("POST", path, body, { headers: { "content-type": contentType } })
}

const paths = {
  get: (f: Fixture) => `${BASE}/${f.id}`,
  create: (f: Fixture) => `${BASE}/${f.id}/sessions`,
  batch: (f: Fixture) => `${BASE}/${f.id}/sessions/batch`,
  batchAuthorize: (f: Fixture) => `${BASE}/${f.id}/sessions/batch/authorize`,
  refresh: (f: Fixture) => `${BASE}/${f.id}/sessions/${f.manual.id}`,
  authorize: (f: Fixture) => `${BASE}/${f.id}/sessions/${f.manual.id}/authorize`,
}

/** The five POST endpoints, each with a body it would accept. */
const postEndpoints: [string, (f: Fixture) => string, (f: Fixture) => Record<string, unknown>][] = [
  ["POST /:id/sessions", paths.create, () => ({ provider_id: "manual" })],
  ["POST /:id/sessions/batch", paths.batch, keepBatch],
  ["POST /:id/sessions/batch/authorize", paths.batchAuthorize, (f) => ({ session_ids: [f.manual.id] })],
  ["POST /:id/sessions/:session_id (refresh)", paths.refresh, () => ({})],
  ["POST /:id/sessions/:session_id/authorize", paths.authorize, () => ({})],
]

describe("Store Payment Collections: input validation on all six endpoints", () => {
  let regionId: string
  let f: Fixture
  let dirty = true
  let before: Awaited<ReturnType<typeof worldSnapshot>>

  async function createFixture(): Promise<Fixture> {
    const collection = await createPaymentCollection({ regionId, amount: 1000 })
    const res = await post(`${BASE}/${collection.id}/sessions/batch`, {
      sessions: [
        { provider_id: "manual", amount: 400 },
        { provider_id: "test-pay", amount: 600 },
      ],
    })
    if (res.status !== 200) throw new Error(`fixture batch answered ${res.status}: ${res.text}`)
    const sessions = res.body.payment_collection.payment_sessions
    return {
      id: collection.id,
      manual: sessions.find((s: any) => s.provider_id === "manual"),
      testPay: sessions.find((s: any) => s.provider_id === "test-pay"),
    }
  }

  beforeAll(async () => {
    regionId = (await createRegion({ providers: ["manual", "test-pay"] })).id
  })

  // One collection serves every test; a test that changed it (a bug) gets the
  // next test a fresh one.
  beforeEach(async () => {
    if (dirty) {
      f = await createFixture()
      dirty = false
    }
    before = await worldSnapshot([f.id])
  })

  afterEach(async () => {
    const after = await worldSnapshot([f.id])
    if (JSON.stringify(after) !== JSON.stringify(before)) dirty = true
    expect(after).toEqual(before)
  })

  afterAll(() => db.end())

  describe("hostile path ids", () => {
    const endpoints: [string, (f: Fixture, id: string) => Promise<HttpResponse>][] = [
      ["GET /:id", (_f, id) => api.get(`${BASE}/${id}`)],
      ["POST /:id/sessions", (_f, id) => post(`${BASE}/${id}/sessions`, { provider_id: "manual" })],
      ["POST /:id/sessions/batch", (f, id) => post(`${BASE}/${id}/sessions/batch`, keepBatch(f))],
      [
        "POST /:id/sessions/batch/authorize",
        (f, id) => post(`${BASE}/${id}/sessions/batch/authorize`, { session_ids: [f.manual.id] }),
      ],
      ["POST /:id/sessions/:session_id", (f, id) => post(`${BASE}/${id}/sessions/${f.manual.id}`)],
      ["POST /:id/sessions/:session_id/authorize", (f, id) => post(`${BASE}/${id}/sessions/${f.manual.id}/authorize`)],
    ]
    const sessionEndpoints: [string, (f: Fixture, sid: string) => Promise<HttpResponse>][] = [
      ["POST /:id/sessions/:session_id", (f, sid) => post(`${BASE}/${f.id}/sessions/${sid}`)],
      ["POST /:id/sessions/:session_id/authorize", (f, sid) => post(`${BASE}/${f.id}/sessions/${sid}/authorize`)],
    ]
    // [name, path segment (already URL-encoded)]
    const unknownIds: [string, (f: Fixture, own: string) => string][] = [
      ["a 4096-character id", () => "p".repeat(4096)],
      ["a unicode id (snowman, CJK, emoji, RTL override)", () => enc("paycol_☃_日本語_🙂_\u202e")],
      ["%00 (a NUL byte)", () => "%00"],
      ["the real id followed by %00", (_f, own) => `${own}%00`],
      ["an SQL injection attempt", () => enc("' OR '1'='1")],
      ["an SQL statement", () => enc("x'; DROP TABLE payment_collection; --")],
      ["a LIKE wildcard", () => enc("paycol_%")],
      ["the real id in lower case", (_f, own) => own.toLowerCase()],
      ["the real id with a trailing space", (_f, own) => enc(own + " ")],
    ]

    describe.each(endpoints)("%s", (_name, call) => {
      it.each(unknownIds)("collection id: %s → 404 not_found", async (_idName, segment) => {
        expectMedusaError(await call(f, segment(f, f.id)), 404, "not_found")
      })

      it("collection id with malformed percent-encoding (%ZZ) → 400 invalid_data", async () => {
        expectMedusaError(await call(f, "%ZZ"), 400, "invalid_data")
      })
    })

    describe.each(sessionEndpoints)("%s", (_name, call) => {
      it.each(unknownIds)("session id: %s → 404 not_found", async (_idName, segment) => {
        expectMedusaError(await call(f, segment(f, f.manual.id)), 404, "not_found")
      })

      it("session id with malformed percent-encoding (%ZZ) → 400 invalid_data", async () => {
        expectMedusaError(await call(f, "%ZZ"), 400, "invalid_data")
      })
    })
  })

  describe("GET /:id query parameters", () => {
    it.each([
      ["an unknown relation in expand", "expand=nonexistent"],
      ["an unknown nested relation in expand", "expand=region.nonexistent"],
      ["a NUL byte in expand", "expand=%00"],
      ["a 5000-character expand", `expand=${"a".repeat(5000)}`],
      ["an unknown column in fields", "fields=nonexistent"],
      ["SQL in fields", `fields=${enc("id;DROP TABLE payment_collection")}`],
      ["expand as an array", "expand[]=region"],
      ["expand as an object", "expand[a]=region"],
      ["fields given twice", "fields=id&fields=amount"],
      ["an unknown parameter", "limit=10"],
    ])("%s → 400 invalid_data", async (_name, query) => {
      expectMedusaError(await api.get(`${paths.get(f)}?${query}`), 400, "invalid_data")
    })
  })

  describe("POST /:id/sessions body", () => {
    it.each([
      ["provider_id a number", { provider_id: 42 }],
      ["provider_id a boolean", { provider_id: true }],
      ["provider_id null", { provider_id: null }],
      ["provider_id an array", { provider_id: ["manual"] }],
      ["provider_id an object", { provider_id: { id: "manual" } }],
      ["provider_id a nested object", { provider_id: { provider_id: { provider_id: "manual" } } }],
      ["provider_id empty", { provider_id: "" }],
      ["provider_id of 256 characters", { provider_id: "m".repeat(256) }],
      ["provider_id of 50 000 characters", { provider_id: "m".repeat(50_000) }],
      ["provider_id missing", {}],
      ["an unknown property", { provider_id: "manual", amount: 1000 }],
      ["an unknown nested property", { provider_id: "manual", metadata: { a: 1 } }],
    ])("%s → 400 invalid_data", async (_name, body) => {
      expectMedusaError(await post(paths.create(f), body), 400, "invalid_data")
    })

    it("a provider_id of exactly 255 characters passes validation and is refused as an unknown provider", async () => {
      const res = await post(paths.create(f), { provider_id: "m".repeat(255) })
      expectMedusaError(res, 400, "invalid_data")
      expect(res.body.message).toContain("is not available")
    })

    it.each([
      ["a JSON array", "[{\"provider_id\":\"manual\"}]"],
      ["a JSON string", "\"manual\""],
      ["a JSON number", "42"],
      ["JSON null", "null"],
      ["JSON true", "true"],
    ])("a body that is %s → 400 invalid_data", async (_name, body) => {
      expectMedusaError(await raw(paths.create(f), body), 400, "invalid_data")
    })

    it("no body at all → 400 invalid_data", async () => {
      expectMedusaError(await post(paths.create(f)), 400, "invalid_data")
    })
  })

  describe("POST /:id/sessions/batch body", () => {
    const session = (over: Record<string, unknown>) => ({ provider_id: "manual", amount: 1000, ...over })

    it.each([
      ["sessions a string", () => ({ sessions: "manual" })],
      ["sessions a number", () => ({ sessions: 1000 })],
      ["sessions null", () => ({ sessions: null })],
      ["sessions a boolean", () => ({ sessions: true })],
      ["sessions an object", () => ({ sessions: session({}) })],
      ["sessions missing", () => ({})],
      ["sessions empty", () => ({ sessions: [] })],
      ["a session that is null", () => ({ sessions: [null] })],
      ["a session that is a string", () => ({ sessions: ["manual"] })],
      ["a session that is a number", () => ({ sessions: [1000] })],
      ["a session that is an array", () => ({ sessions: [[session({})]] })],
      ["provider_id a number", () => ({ sessions: [session({ provider_id: 7 })] })],
      ["provider_id null", () => ({ sessions: [session({ provider_id: null })] })],
      ["provider_id an array", () => ({ sessions: [session({ provider_id: ["manual"] })] })],
      ["provider_id an object", () => ({ sessions: [session({ provider_id: { id: "manual" } })] })],
      ["provider_id missing", () => ({ sessions: [{ amount: 1000 }] })],
      ["provider_id of 256 characters", () => ({ sessions: [session({ provider_id: "m".repeat(256) })] })],
      ["session_id a number", () => ({ sessions: [session({ session_id: 1 })] })],
      ["session_id an object", () => ({ sessions: [session({ session_id: { id: "x" } })] })],
      ["session_id an array", (f: Fixture) => ({ sessions: [session({ session_id: [f.manual.id] })] })],
      ["session_id empty", () => ({ sessions: [session({ session_id: "" })] })],
      ["session_id of 256 characters", () => ({ sessions: [session({ session_id: "s".repeat(256) })] })],
      ["an unknown property", (f: Fixture) => ({ ...keepBatch(f), replace: true })],
      ["an unknown property in a session", () => ({ sessions: [session({ currency_code: "usd" })] })],
      ["id instead of session_id", (f: Fixture) => ({ sessions: [session({ id: f.manual.id })] })],
      ["51 sessions", () => ({ sessions: Array.from({ length: 51 }, () => session({ amount: 1 })) })],
      [
        "the same session_id twice",
        (f: Fixture) => ({
          sessions: [
            { provider_id: "manual", amount: 500, session_id: f.manual.id },
            { provider_id: "manual", amount: 500, session_id: f.manual.id },
          ],
        }),
      ],
      [
        "the same unknown session_id twice",
        () => ({
          sessions: [
            { provider_id: "manual", amount: 500, session_id: "ps_not_in_this_collection" },
            { provider_id: "manual", amount: 500, session_id: "ps_not_in_this_collection" },
          ],
        }),
      ],
      [
        "a session_id of another provider",
        (f: Fixture) => ({ sessions: [{ provider_id: "test-pay", amount: 1000, session_id: f.manual.id }] }),
      ],
    ])("%s → 400 invalid_data", async (_name, body) => {
      expectMedusaError(await post(paths.batch(f), body(f)), 400, "invalid_data")
    })

    // amount is a PostgreSQL integer: a positive whole number up to 2^31-1. Each
    // pair adds up to the collection's 1000 where arithmetic allows, so only the
    // integer rule can refuse it.
    describe("integer amounts", () => {
      const pair = (a: unknown, b: unknown) =>
        `{"sessions":[{"provider_id":"manual","amount":${a}},{"provider_id":"test-pay","amount":${b}}]}`
      it.each([
        ["fractional (400.5 + 599.5)", pair(400.5, 599.5)],
        ["tiny fraction (1e-7 + 1000)", pair("1e-7", 1000)],
        ["negative (-1000 + 2000)", pair(-1000, 2000)],
        ["zero (0 + 1000)", pair(0, 1000)],
        ["negative zero (-0 + 1000)", pair("-0", 1000)],
        ["above 2^31-1 (2147483648 + -2147482648)", pair(2147483648, -2147482648)],
        ["both at 2^31-1 (sum overflows an int)", pair(2147483647, 2147483647)],
        ["above 2^53 (9007199254740993)", pair("9007199254740993", 1000)],
        ["1e400 (Infinity once parsed)", pair("1e400", 1000)],
        ["numeric strings (\"400\" + \"600\")", pair('"400"', '"600"')],
        ["a hex string (\"0x190\")", pair('"0x190"', 600)],
        ["\"NaN\"", pair('"NaN"', 1000)],
        ["\"Infinity\"", pair('"Infinity"', 1000)],
        ["true", pair("true", 1000)],
        ["null", pair("null", 1000)],
        ["an array ([400])", pair("[400]", 600)],
        ["an object ({\"value\":400})", pair('{"value":400}', 600)],
        ["missing", `{"sessions":[{"provider_id":"manual"}]}`],
      ])("amount %s → 400 invalid_data", async (_name, body) => {
        expectMedusaError(await raw(paths.batch(f), body), 400, "invalid_data")
      })

      it.each([
        ["NaN", pair("NaN", 1000)],
        ["Infinity", pair("Infinity", 1000)],
        ["-Infinity", pair("-Infinity", 1000)],
      ])("amount %s (not JSON) → 400 invalid_data", async (_name, body) => {
        expectMedusaError(await raw(paths.batch(f), body), 400, "invalid_data")
      })

      it("amounts that are valid integers but do not add up to the collection's amount → 400 invalid_data", async () => {
        const res = await raw(paths.batch(f), pair(400, 601))
        expectMedusaError(res, 400, "invalid_data")
        expect(res.body.message).toContain("must equal")
      })
    })

    it.each([
      ["a JSON array", (f: Fixture) => JSON.stringify([keepBatch(f)])],
      ["a JSON string", () => "\"sessions\""],
      ["JSON null", () => "null"],
    ])("a body that is %s → 400 invalid_data", async (_name, body) => {
      expectMedusaError(await raw(paths.batch(f), body(f)), 400, "invalid_data")
    })
  })

  describe("POST /:id/sessions/batch/authorize body", () => {
    it.each([
      ["session_ids a string", (f: Fixture) => ({ session_ids: f.manual.id })],
      ["session_ids a number", () => ({ session_ids: 1 })],
      ["session_ids null", () => ({ session_ids: null })],
      ["session_ids an object", (f: Fixture) => ({ session_ids: { 0: f.manual.id } })],
      ["session_ids a boolean", () => ({ session_ids: true })],
      ["session_ids missing", () => ({})],
      ["session_ids empty", () => ({ session_ids: [] })],
      ["an id that is a number", () => ({ session_ids: [1] })],
      ["an id that is null", () => ({ session_ids: [null] })],
      ["an id that is an array", (f: Fixture) => ({ session_ids: [[f.manual.id]] })],
      ["an id that is an object", (f: Fixture) => ({ session_ids: [{ id: f.manual.id }] })],
      ["an id that is a boolean", () => ({ session_ids: [true] })],
      ["an empty id", () => ({ session_ids: [""] })],
      ["an id of 256 characters", () => ({ session_ids: ["s".repeat(256)] })],
      ["a duplicate id", (f: Fixture) => ({ session_ids: [f.manual.id, f.manual.id] })],
      ["a duplicate among others", (f: Fixture) => ({ session_ids: [f.manual.id, f.testPay.id, f.manual.id] })],
      ["51 ids", () => ({ session_ids: Array.from({ length: 51 }, (_, i) => `ps_${i}`) })],
      ["an unknown property", (f: Fixture) => ({ session_ids: [f.manual.id], context: { ip: "1.2.3.4" } })],
    ])("%s → 400 invalid_data", async (_name, body) => {
      expectMedusaError(await post(paths.batchAuthorize(f), body(f)), 400, "invalid_data")
    })

    it("an id that is not one of the collection's sessions → 404 not_found", async () => {
      expectMedusaError(await post(paths.batchAuthorize(f), { session_ids: ["ps_unknown"] }), 404, "not_found")
    })
  })

  describe.each(postEndpoints)("%s: malformed and oversized bodies", (_name, path, validBody) => {
    it.each([
      ["a truncated object", "{\"provider_id\":"],
      ["single quotes", "{'provider_id':'manual'}"],
      ["unquoted keys", "{provider_id:\"manual\"}"],
      ["a trailing comma", "{\"a\":1,}"],
      ["two concatenated objects", "{\"a\":1}{\"b\":2}"],
      ["a NUL byte", "\u0000"],
      ["a lone bracket", "["],
    ])("malformed JSON (%s) → 400 invalid_data", async (_kind, body) => {
      expectMedusaError(await raw(path(f), body), 400, "invalid_data")
    })

    it("a JSON body over 100 kB → 413 invalid_data", async () => {
      const body = JSON.stringify({ ...validBody(f), padding: OVERSIZED })
      expectMedusaError(await raw(path(f), body), 413, "invalid_data")
    })

    it("a text/plain body over 100 kB → 415 invalid_data, not read", async () => {
      expectMedusaError(await raw(path(f), OVERSIZED, "text/plain"), 415, "invalid_data")
    })

    it("a form body over 100 kB → 415 invalid_data, not read", async () => {
      expectMedusaError(
        await raw(path(f), `padding=${OVERSIZED}`, "application/x-www-form-urlencoded"),
        415,
        "invalid_data"
      )
    })
  })

  // A storefront sends JSON. The same body under another content type is not
  // the endpoint's input and must not be acted on: 415, before it is read.
  describe("wrong content types", () => {
    const cases: [string, (f: Fixture) => string, (f: Fixture) => Record<string, string>][] = [
      [
        "POST /:id/sessions",
        paths.create,
        () => ({
          "text/plain": JSON.stringify({ provider_id: "manual" }),
          "application/x-www-form-urlencoded": "provider_id=manual",
          "application/xml": "<body><provider_id>manual</provider_id></body>",
        }),
      ],
      [
        "POST /:id/sessions/batch",
        paths.batch,
        (f) => ({
          "text/plain": JSON.stringify(keepBatch(f)),
          "application/x-www-form-urlencoded":
            `sessions[0][provider_id]=manual&sessions[0][amount]=400&sessions[0][session_id]=${f.manual.id}` +
            `&sessions[1][provider_id]=test-pay&sessions[1][amount]=600&sessions[1][session_id]=${f.testPay.id}`,
          "application/xml": "<sessions><session><provider_id>manual</provider_id></session></sessions>",
        }),
      ],
      [
        "POST /:id/sessions/batch/authorize",
        paths.batchAuthorize,
        (f) => ({
          "text/plain": JSON.stringify({ session_ids: [f.manual.id] }),
          "application/x-www-form-urlencoded": `session_ids[0]=${f.manual.id}`,
          "application/xml": `<session_ids><id>${f.manual.id}</id></session_ids>`,
        }),
      ],
    ]
    describe.each(cases)("%s", (_name, path, bodies) => {
      it.each(["text/plain", "application/x-www-form-urlencoded", "application/xml"])(
        "the body as %s → 415 invalid_data",
        async (contentType) => {
          expectMedusaError(await raw(path(f), bodies(f)[contentType], contentType), 415, "invalid_data")
        }
      )
    })
  })
})
