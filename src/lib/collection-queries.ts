import { EntityManager } from "typeorm"

/**
 * The plugin's reads, in plain SQL: each answers in one statement what the
 * endpoints need, and rows come back with the same values TypeORM would
 * hydrate (the pg driver parses timestamps, jsonb and integers alike), so the
 * responses keep core's shape without core's extra queries.
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

/**
 * Locks the collection row, or reports it busy at once (NOWAIT): a request
 * never holds a pool connection while it waits for another process's lock.
 * The same statement bounds every later lock wait of the transaction (on
 * session or payment rows) by `lockTimeoutMs`.
 */
export async function lockCollectionNoWait(
  tx: EntityManager,
  collectionId: string,
  lockTimeoutMs: number
): Promise<CollectionRow | undefined> {
  const rows: (CollectionRow & { __lock_timeout: string })[] = await tx.query(
    `SELECT pc.*, set_config('lock_timeout', $2, true) AS __lock_timeout
       FROM payment_collection pc
      WHERE pc.id = $1 AND pc.deleted_at IS NULL
        FOR UPDATE OF pc NOWAIT`,
    [collectionId, `${Math.ceil(lockTimeoutMs)}ms`]
  )
  if (!rows.length) {
    return undefined
  }
  const { __lock_timeout: _setting, ...collection } = rows[0]
  return collection as CollectionRow
}

export async function listSessions(
  tx: EntityManager,
  collectionId: string
): Promise<SessionRow[]> {
  return await tx.query(
    `SELECT ps.* FROM payment_session ps
       JOIN payment_collection_sessions pcs ON pcs.payment_session_id = ps.id
      WHERE pcs.payment_collection_id = $1
      ORDER BY ps.created_at, ps.id`,
    [collectionId]
  )
}

export async function listPayments(
  tx: EntityManager,
  collectionId: string
): Promise<Record<string, unknown>[]> {
  return await tx.query(
    `SELECT p.* FROM payment p
       JOIN payment_collection_payments pcp ON pcp.payment_id = p.id
      WHERE pcp.payment_collection_id = $1
      ORDER BY p.created_at, p.id`,
    [collectionId]
  )
}

type ProviderFlags = { id: string; is_installed: boolean; enabled: boolean }

/**
 * The providers enabled on region `r`, with the plugin's switch: a JSON array
 * of ProviderFlags (ids and booleans only, so JSON loses nothing).
 */
const PROVIDERS_OF_REGION = `(
  SELECT json_agg(json_build_object(
           'id', pp.id,
           'is_installed', pp.is_installed,
           'enabled', COALESCE(s.is_enabled, true))
         ORDER BY pp.id)
    FROM region_payment_providers rpp
    JOIN payment_provider pp ON pp.id = rpp.provider_id
    LEFT JOIN payment_collection_provider_setting s ON s.provider_id = pp.id
   WHERE rpp.region_id = r.id)`

function withProviders(region: RegionRow, providers: ProviderFlags[]): RegionWithProviders {
  return {
    region: {
      ...region,
      payment_providers: providers.map(({ id, is_installed }) => ({ id, is_installed })),
    },
    enabledProviderIds: providers.filter((p) => p.enabled).map((p) => p.id),
  }
}

/**
 * For the locked paths, in one statement after the lock: the collection's
 * sessions (read after the lock, so no other request's change is missed) and
 * its region with the providers usable for it. Region columns come as they
 * are (`r.*`, whatever extends the table); session columns are prefixed.
 */
export async function readSessionsAndRegion(
  tx: EntityManager,
  collection: { id: string; region_id: string }
): Promise<RegionWithProviders & { sessions: SessionRow[] }> {
  const rows: Record<string, unknown>[] = await tx.query(
    `SELECT r.*,
            ${PROVIDERS_OF_REGION} AS "__providers",
            ${SESSION_COLUMNS.map((c) => `ps.${c} AS "__s_${c}"`).join(", ")}
       FROM region r
       LEFT JOIN payment_collection_sessions pcs ON pcs.payment_collection_id = $2
       LEFT JOIN payment_session ps ON ps.id = pcs.payment_session_id
      WHERE r.id = $1
      ORDER BY ps.created_at, ps.id`,
    [collection.region_id, collection.id]
  )
  const first = rows[0] ?? {}
  const { region, providers } = regionOf(first)
  return {
    ...withProviders(region, providers),
    sessions: sessionsOf(rows),
  }
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
 * A collection, its sessions and its region (with the providers usable for
 * it) in ONE statement, so all come from the same snapshot without a
 * transaction: the lock-free reads (GET, a re-post that changes nothing) must
 * never mix a collection's state with sessions from before or after another
 * request's commit. Region columns come as they are (`r.*`); the
 * collection's and the sessions' are prefixed.
 */
export async function readCollection(
  manager: EntityManager,
  collectionId: string
): Promise<
  | ({ collection: CollectionRow; sessions: SessionRow[] } & {
      region: RegionWithProviders["region"] | null
      enabledProviderIds: string[]
    })
  | undefined
> {
  const rows: Record<string, unknown>[] = await manager.query(
    `SELECT r.*,
            ${PROVIDERS_OF_REGION} AS "__providers",
            ${COLLECTION_COLUMNS.map((c) => `pc.${c} AS "__c_${c}"`).join(", ")},
            ${SESSION_COLUMNS.map((c) => `ps.${c} AS "__s_${c}"`).join(", ")}
       FROM payment_collection pc
       LEFT JOIN region r ON r.id = pc.region_id AND r.deleted_at IS NULL
       LEFT JOIN payment_collection_sessions pcs ON pcs.payment_collection_id = pc.id
       LEFT JOIN payment_session ps ON ps.id = pcs.payment_session_id
      WHERE pc.id = $1 AND pc.deleted_at IS NULL
      ORDER BY ps.created_at, ps.id`,
    [collectionId]
  )
  if (!rows.length) {
    return undefined
  }
  const first = rows[0]
  const { region, providers } = regionOf(first)
  const regionInfo = region.id
    ? withProviders(region, providers)
    : { region: null, enabledProviderIds: [] }
  return {
    ...regionInfo,
    collection: Object.fromEntries(
      COLLECTION_COLUMNS.map((c) => [c, first[`__c_${c}`]])
    ) as CollectionRow,
    sessions: sessionsOf(rows),
  }
}

/** The `r.*` columns and the providers of a row whose other columns are `__`-prefixed. */
function regionOf(row: Record<string, unknown>): { region: RegionRow; providers: ProviderFlags[] } {
  return {
    region: Object.fromEntries(
      Object.entries(row).filter(([k]) => !k.startsWith("__"))
    ) as RegionRow,
    providers: (row.__providers ?? []) as ProviderFlags[],
  }
}

function sessionsOf(rows: Record<string, unknown>[]): SessionRow[] {
  return rows
    .filter((row) => row.__s_id !== null && row.__s_id !== undefined)
    .map(
      (row) =>
        Object.fromEntries(SESSION_COLUMNS.map((c) => [c, row[`__s_${c}`]])) as SessionRow
    )
}
