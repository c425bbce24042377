import path from "path"
import crypto from "crypto"
import { Pool, QueryResult, QueryResultRow } from "pg"
import { testEnv } from "./env"
import { adminApi, HttpResponse } from "./http"

// ---------------------------------------------------------------- database

let pool: Pool | undefined

function getPool(): Pool {
  // allowExitOnIdle: an idle pool never keeps jest from exiting.
  pool ??= new Pool({ connectionString: testEnv().databaseUrl, max: 5, allowExitOnIdle: true })
  return pool
}

export const db = {
  query<R extends QueryResultRow = any>(sql: string, params: unknown[] = []): Promise<QueryResult<R>> {
    return getPool().query<R>(sql, params)
  },
  async end(): Promise<void> {
    const p = pool
    pool = undefined
    await p?.end()
  },
}

// Plain CommonJS shared with the benchmark's seed; typed here instead of allowJs.
// eslint-disable-next-line @typescript-eslint/no-var-requires
export const entityId: (prefix: string) => string = require(
  path.resolve(__dirname, "../../scripts/lib/entity-id.js")
).entityId

// ------------------------------------------------------------------ regions

function expectOk<T>(what: string, res: HttpResponse<T>): T {
  if (res.status < 200 || res.status >= 300) {
    throw new Error(`${what} answered ${res.status}: ${res.text}`)
  }
  return res.body
}

async function ensureStoreCurrency(code: string): Promise<void> {
  const { store } = expectOk("GET /admin/store", await adminApi.get("/admin/store"))
  if (store.currencies.some((c: { code: string }) => c.code === code)) return
  expectOk(`POST /admin/store/currencies/${code}`, await adminApi.post(`/admin/store/currencies/${code}`))
}

export interface CreateRegionInput {
  providers?: string[]
  currency?: string
  name?: string
  taxRate?: number
  countries?: string[]
}

/** Creates a region through the admin API (`POST /admin/regions`); returns the API's region. */
export async function createRegion({
  providers = ["manual", "test-pay"],
  currency = "usd",
  name = `Test region ${crypto.randomBytes(3).toString("hex")}`,
  taxRate = 0,
  countries = [],
}: CreateRegionInput = {}): Promise<any> {
  await ensureStoreCurrency(currency)
  const res = await adminApi.post("/admin/regions", {
    name,
    currency_code: currency,
    tax_rate: taxRate,
    payment_providers: providers,
    fulfillment_providers: [],
    countries,
  })
  return expectOk("POST /admin/regions", res).region
}

/** A country no region has yet (a region's countries are its own), e.g. for a checkout. */
export async function freeCountry(): Promise<string> {
  const { rows } = await db.query(`SELECT iso_2 FROM country WHERE region_id IS NULL ORDER BY iso_2 LIMIT 1`)
  if (!rows.length) throw new Error("no country left without a region")
  return rows[0].iso_2
}

// ------------------------------------------------------ payment collections

export interface CreatePaymentCollectionInput {
  regionId: string
  amount: number
  status?: string
  currency?: string
  description?: string | null
}

/** Inserts a `payment_collection` row (type order_edit, created_by "test"); returns the row. */
export async function createPaymentCollection({
  regionId,
  amount,
  status = "not_paid",
  currency = "usd",
  description = null,
}: CreatePaymentCollectionInput): Promise<any> {
  const { rows } = await db.query(
    `INSERT INTO payment_collection
       (id, type, status, description, amount, region_id, currency_code, metadata, created_by)
     VALUES ($1, 'order_edit', $2, $3, $4, $5, $6, NULL, 'test')
     RETURNING *`,
    [entityId("paycol"), status, description, amount, regionId, currency]
  )
  return rows[0]
}
