import * as fc from "fast-check"
import { Client } from "pg"
import { RowShape, recordFields } from "../src/db/row-text"
import { testEnv } from "./helpers/env"

// The plugin's SQL functions answer rows as `row::text`; decoded, each must be
// exactly the object node-postgres makes of the same row selected plainly —
// whatever the values hold (quotes, backslashes, commas, parentheses,
// whitespace, empty strings, NULLs, nested JSON, microseconds).

// The parsers node-postgres itself uses (the pg-types registry behind `pg.types`).
// eslint-disable-next-line @typescript-eslint/no-var-requires
const types: { getTypeParser: (oid: number, format: "text") => (value: string) => unknown } = require("pg").types

const TABLE = `pcp_row_text_${process.pid}`
const ENUM = `${TABLE}_enum`

const awkwardText = fc.oneof(
  fc.string(),
  fc.constantFrom("", " ", '"', '""', "\\", "\\\\", "(", ")", ",", "a,b", "(x)", "NULL", "null", " lead", "trail ", "tab\there", "line\nbreak", "🙂", "é"),
  fc.string({ unit: fc.constantFrom('"', "\\", "(", ")", ",", " ", "a", "\n", "{", "}") })
).map((s) => s.replace(/\u0000/g, ""))

const jsonValue = fc.jsonValue().map((v) => JSON.parse(JSON.stringify(v).replace(/\\u0000/g, "")))
const timestamp = fc
  .date({ min: new Date("1970-01-01T00:00:00Z"), max: new Date("2200-01-01T00:00:00Z"), noInvalidDate: true })
  .chain((d) => fc.integer({ min: 0, max: 999 }).map((micros) => `${d.toISOString().slice(0, 23)}${String(micros).padStart(3, "0")}Z`))

const row = fc.record({
  t: fc.option(awkwardText),
  v: fc.option(awkwardText),
  i: fc.option(fc.integer({ min: -2147483648, max: 2147483647 })),
  b: fc.option(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map(String)),
  n: fc.option(fc.tuple(fc.integer(), fc.nat(9999)).map(([a, b]) => `${a}.${String(b).padStart(4, "0")}`)),
  r: fc.option(fc.float({ noNaN: true, noDefaultInfinity: true })),
  f: fc.option(fc.double({ noNaN: true, noDefaultInfinity: true })),
  ok: fc.option(fc.boolean()),
  at: fc.option(timestamp),
  local: fc.option(timestamp.map((s) => s.slice(0, -1))),
  day: fc.option(fc.date({ min: new Date("1970-01-01"), max: new Date("2200-01-01"), noInvalidDate: true }).map((d) => d.toISOString().slice(0, 10))),
  doc: fc.option(jsonValue),
  plain: fc.option(jsonValue),
  tags: fc.option(fc.array(fc.option(awkwardText), { maxLength: 4 })),
  nums: fc.option(fc.array(fc.integer(), { maxLength: 4 })),
  state: fc.option(fc.constantFrom("pending", "authorized", "with space", 'q"uote')),
})

describe("rows as text (row-text.ts) decode to what a plain SELECT gives", () => {
  let client: Client

  beforeAll(async () => {
    client = new Client({ connectionString: testEnv().databaseUrl })
    await client.connect()
    await client.query(`CREATE TYPE ${ENUM} AS ENUM ('pending', 'authorized', 'with space', 'q"uote')`)
    await client.query(`
      CREATE TABLE ${TABLE} (
        id serial PRIMARY KEY, t text, v varchar, i integer, b bigint, n numeric, r real, f double precision,
        ok boolean, at timestamptz, local timestamp, day date, doc jsonb, plain json, tags text[], nums integer[],
        state ${ENUM})`)
  })

  afterAll(async () => {
    await client.query(`DROP TABLE IF EXISTS ${TABLE}`)
    await client.query(`DROP TYPE IF EXISTS ${ENUM}`)
    await client.end()
  })

  it("decodes every generated row exactly as node-postgres parses its columns", async () => {
    const { rows: columns } = await client.query(
      `SELECT attname AS name, atttypid::int AS "typeId" FROM pg_attribute
        WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
      [TABLE]
    )
    const shape = new RowShape(columns, (oid) => types.getTypeParser(oid, "text"))
    await fc.assert(
      fc.asyncProperty(row, async (values) => {
        const { rows } = await client.query(
          `INSERT INTO ${TABLE} (t, v, i, b, n, r, f, ok, at, local, day, doc, plain, tags, nums, state)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb, $13::json, $14, $15, $16)
           RETURNING *, ${TABLE}::text AS as_text`,
          [
            values.t, values.v, values.i, values.b, values.n, values.r, values.f, values.ok, values.at, values.local,
            values.day, values.doc === null ? null : JSON.stringify(values.doc),
            values.plain === null ? null : JSON.stringify(values.plain), values.tags, values.nums, values.state,
          ]
        )
        const { as_text, ...plain } = rows[0]
        expect(shape.decode(as_text)).toEqual(plain)
      }),
      { numRuns: 300, seed: 20261201 }
    )
  })

  it("reads NULL, the empty string and quoted fields apart", () => {
    expect(recordFields('(,"",a,"b,c","d""e","f\\\\g",)')).toEqual([null, "", "a", "b,c", 'd"e', "f\\g", null])
    expect(recordFields("()")).toEqual([null])
  })

  it("tells a row of another shape (the table changed) by its number of fields", () => {
    const shape = new RowShape([{ name: "a", typeId: 25 }, { name: "b", typeId: 25 }], () => (s: string) => s)
    expect(shape.decode("(x,y)")).toEqual({ a: "x", b: "y" })
    expect(shape.decode("(x,y,z)")).toBeUndefined()
  })
})
