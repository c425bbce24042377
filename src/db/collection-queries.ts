import { EntityManager } from "typeorm"
import { Payer } from "../types/payer"
import { PayerRow, payerFrom } from "./collection-payer"
import { RowDecoder, RowTable } from "./row-shapes"

/**
 * The plugin's reads. The hot ones are calls of the plugin's SQL functions
 * (migration CreatePaymentCollectionFunctions): PostgreSQL plans their
 * statements once per connection, and one call answers everything a request
 * needs, as rows of `(kind, row text)` decoded with pg's own parsers — the
 * same values TypeORM would hydrate, so the responses keep core's shape
 * without core's extra queries.
 */

export type CollectionRow = {
  id: string
  created_at: Date
  updated_at: Date
  deleted_at: Date | null
  type: string
  status: string
  description: string | null
  amount: number
  authorized_amount: number | null
  region_id: string
  currency_code: string
  metadata: Record<string, unknown> | null
  created_by: string
}

export type SessionRow = {
  id: string
  created_at: Date
  updated_at: Date
  cart_id: string | null
  provider_id: string
  is_selected: boolean | null
  is_initiated: boolean
  status: string
  data: Record<string, unknown>
  idempotency_key: string | null
  amount: number | null
  payment_authorized_at: Date | null
}

export type RegionRow = Record<string, unknown> & { id: string }

export type RegionWithProviders = {
  region: RegionRow & { payment_providers: { id: string; is_installed: boolean }[] }
  /** Enabled on the region and not switched off for payment collections. */
  enabledProviderIds: string[]
}

/** A call on one of the collection's sessions whose answer is not settled yet. */
export type OpenCall = {
  id: string
  session_id: string
  operation: string
  state: string
  /** Still running (its request's lease is not over): only its answer can settle it. */
  in_flight: boolean
  /** Until when it belongs to its request; after that anyone holding the lock may settle it. */
  lease_until: string
  /** Set while the finisher backs off from settling it (its last try failed). */
  retry_at: string | null
}

/** A collection with its sessions and region, all from one snapshot. */
export type CollectionRead = {
  collection: CollectionRow
  sessions: SessionRow[]
  /** Null when the region was deleted. */
  region: RegionWithProviders["region"] | null
  enabledProviderIds: string[]
  /** Only on a locked read. */
  openCalls: OpenCall[]
  /** Who pays (see collection-payer.ts); only on a locked read. */
  payer: Payer
}

type ProviderFlags = { id: string; is_installed: boolean; enabled: boolean }
type FunctionRow = { kind: string; body: string }

const TABLE_OF_KIND: Record<string, RowTable> = {
  collection: "payment_collection",
  session: "payment_session",
  region: "region",
  payment: "payment",
}

/** The rows of one function call, decoded, by kind (`providers` is JSON). */
async function decodeByKind(manager: EntityManager, decoder: RowDecoder, rows: FunctionRow[]) {
  const tableRows = rows.filter((r) => r.kind in TABLE_OF_KIND)
  const decoded = await decoder.decode(
    manager,
    tableRows.map((r) => [TABLE_OF_KIND[r.kind], r.body])
  )
  const byKind = (kind: string) => decoded.filter((_, i) => tableRows[i].kind === kind)
  const providers = rows.find((r) => r.kind === "providers")
  const openCalls = rows.filter((r) => r.kind === "open_call").map((r) => JSON.parse(r.body) as OpenCall)
  const payer = rows.find((r) => r.kind === "payer")
  return {
    byKind,
    providers: providers ? (JSON.parse(providers.body) as ProviderFlags[]) : [],
    openCalls,
    payer: payerFrom(payer ? (JSON.parse(payer.body) as PayerRow) : undefined),
  }
}

async function collectionRead(
  manager: EntityManager,
  decoder: RowDecoder,
  rows: FunctionRow[]
): Promise<CollectionRead | undefined> {
  if (!rows.length) {
    return undefined
  }
  const { byKind, providers, openCalls, payer } = await decodeByKind(manager, decoder, rows)
  const [region] = byKind("region")
  return {
    collection: byKind("collection")[0] as CollectionRow,
    sessions: byKind("session") as SessionRow[],
    region: region
      ? {
          ...(decoder.inEntityOrder(manager, "region", region) as RegionRow),
          payment_providers: providers.map(({ id, is_installed }) => ({ id, is_installed })),
        }
      : null,
    enabledProviderIds: region ? providers.filter((p) => p.enabled).map((p) => p.id) : [],
    openCalls,
    payer,
  }
}

/**
 * A collection, its sessions and its region (with the providers usable for
 * it) in one call, so all come from the same snapshot without a transaction:
 * the lock-free reads (GET, a re-post that changes nothing) must never mix a
 * collection's state with sessions from before or after another request's
 * commit.
 */
export async function readCollection(
  manager: EntityManager,
  decoder: RowDecoder,
  collectionId: string
): Promise<CollectionRead | undefined> {
  const rows = await queryOutsideTransaction(manager, `SELECT kind, body FROM pcp_read_collection_v1($1)`, [collectionId])
  return await collectionRead(manager, decoder, rows)
}

type PgPool = { query: (sql: string, params: unknown[]) => Promise<{ rows: FunctionRow[] }> }

/**
 * One statement on TypeORM's own pool (its driver's `master`), without a
 * QueryRunner: on the GET path TypeORM's per-query runner (connect, broadcaster,
 * logging, release) cost more CPU than the statement itself
 * (`npm run bench -- --profile get`). Same connections, same `pg`; a manager
 * bound to a transaction keeps using it.
 */
async function queryOutsideTransaction(manager: EntityManager, sql: string, params: unknown[]): Promise<FunctionRow[]> {
  const pool = (manager.connection.driver as unknown as { master?: PgPool }).master
  if (manager.queryRunner || !pool) {
    return await manager.query(sql, params)
  }
  return (await pool.query(sql, params)).rows
}

/**
 * Locks the collection row, or reports it busy at once (NOWAIT: a request
 * never holds a pool connection while it waits for another process's lock),
 * then reads it as readCollection does — in the same call, but after the
 * lock, so no change committed before the lock is missed — with the calls
 * still open on its sessions and who pays (`customerId`: the logged-in one). The same call bounds every later lock wait of
 * the transaction (on session or payment rows) by `lockTimeoutMs`, and keeps
 * the server from ending the transaction while it waits on a provider for up
 * to `idleTimeoutMs`. Undefined when there is no such collection.
 */
export async function lockCollection(
  tx: EntityManager,
  decoder: RowDecoder,
  collectionId: string,
  timeouts: { lockTimeoutMs: number; idleTimeoutMs: number },
  customerId?: string
): Promise<CollectionRead | undefined> {
  const rows: FunctionRow[] = await tx.query(`SELECT kind, body FROM pcp_lock_collection_v1($1, $2, $3, $4)`, [
    collectionId,
    `${Math.ceil(timeouts.lockTimeoutMs)}ms`,
    `${Math.ceil(timeouts.idleTimeoutMs)}ms`,
    customerId ?? null,
  ])
  return await collectionRead(tx, decoder, rows)
}

/**
 * The end of an authorization: the collection's new status and authorized
 * amount, or none when nothing changed, and the collection's payments — one
 * call.
 */
export async function saveAuthorizationStatus(
  tx: EntityManager,
  decoder: RowDecoder,
  collectionId: string,
  change: { status: string; authorizedAmount: number } | null
): Promise<{ collection: CollectionRow; payments: Record<string, unknown>[] }> {
  const rows: FunctionRow[] = await tx.query(`SELECT kind, body FROM pcp_save_authorization_status_v1($1, $2, $3)`, [
    collectionId,
    change?.status ?? null,
    change?.authorizedAmount ?? null,
  ])
  const { byKind } = await decodeByKind(tx, decoder, rows)
  return {
    collection: byKind("collection")[0] as CollectionRow,
    payments: byKind("payment").map((p) => decoder.inEntityOrder(tx, "payment", p)),
  }
}

/** The collection's sessions, for the finisher (off the request path). */
export async function listSessions(tx: EntityManager, collectionId: string): Promise<SessionRow[]> {
  return await tx.query(
    `SELECT ps.* FROM payment_session ps
       JOIN payment_collection_sessions pcs ON pcs.payment_session_id = ps.id
      WHERE pcs.payment_collection_id = $1
      ORDER BY ps.created_at, ps.id`,
    [collectionId]
  )
}

export const COLLECTION_COLUMNS = [
  "id", "created_at", "updated_at", "deleted_at", "type", "status", "description",
  "amount", "authorized_amount", "region_id", "currency_code", "metadata", "created_by",
]
export const SESSION_COLUMNS = [
  "id", "created_at", "updated_at", "cart_id", "provider_id", "is_selected",
  "is_initiated", "status", "data", "idempotency_key", "amount", "payment_authorized_at",
]

/**
 * The ids of the provider objects the database names for a collection: its
 * sessions' and its payments' `data.id` (a Stripe intent's `pi_…`). A provider
 * object of the collection that none of them names belongs to nothing.
 */
export async function namedProviderObjects(tx: EntityManager, collectionId: string): Promise<Set<string>> {
  const rows: { id: string }[] = await tx.query(
    `SELECT ps.data->>'id' AS id
       FROM payment_collection_sessions pcs JOIN payment_session ps ON ps.id = pcs.payment_session_id
      WHERE pcs.payment_collection_id = $1 AND ps.data ? 'id'
     UNION
     SELECT p.data->>'id'
       FROM payment_collection_payments pcp JOIN payment p ON p.id = pcp.payment_id
      WHERE pcp.payment_collection_id = $1 AND p.data ? 'id'`,
    [collectionId]
  )
  return new Set(rows.map((r) => r.id))
}
