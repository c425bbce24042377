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
 */
export async function lockCollectionNoWait(
  tx: EntityManager,
  collectionId: string
): Promise<CollectionRow | undefined> {
  const rows: CollectionRow[] = await tx.query(
    `SELECT * FROM payment_collection
      WHERE id = $1 AND deleted_at IS NULL
        FOR UPDATE NOWAIT`,
    [collectionId]
  )
  return rows[0]
}

export async function collectionExists(
  manager: EntityManager,
  collectionId: string
): Promise<boolean> {
  const rows = await manager.query(
    `SELECT 1 FROM payment_collection WHERE id = $1 AND deleted_at IS NULL`,
    [collectionId]
  )
  return rows.length > 0
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

/** The region as core's `region.payment_providers` relation returns it. */
export async function regionWithProviders(
  tx: EntityManager,
  regionId: string
): Promise<RegionWithProviders> {
  const rows: (RegionRow & {
    __providers: { id: string; is_installed: boolean; enabled: boolean }[] | null
  })[] = await tx.query(
    `SELECT r.*,
            (SELECT json_agg(json_build_object(
                      'id', pp.id,
                      'is_installed', pp.is_installed,
                      'enabled', COALESCE(s.is_enabled, true))
                    ORDER BY pp.id)
               FROM region_payment_providers rpp
               JOIN payment_provider pp ON pp.id = rpp.provider_id
               LEFT JOIN payment_collection_provider_setting s ON s.provider_id = pp.id
              WHERE rpp.region_id = r.id) AS __providers
       FROM region r
      WHERE r.id = $1`,
    [regionId]
  )
  const { __providers, ...region } = rows[0]
  const providers = __providers ?? []
  return {
    region: {
      ...(region as RegionRow),
      payment_providers: providers.map(({ id, is_installed }) => ({ id, is_installed })),
    },
    enabledProviderIds: providers.filter((p) => p.enabled).map((p) => p.id),
  }
}

export async function linkSession(
  tx: EntityManager,
  collectionId: string,
  sessionId: string
): Promise<void> {
  await tx.query(
    `INSERT INTO payment_collection_sessions (payment_collection_id, payment_session_id)
     VALUES ($1, $2)`,
    [collectionId, sessionId]
  )
}

export async function linkPayment(
  tx: EntityManager,
  collectionId: string,
  paymentId: string
): Promise<void> {
  await tx.query(
    `INSERT INTO payment_collection_payments (payment_collection_id, payment_id)
     VALUES ($1, $2)`,
    [collectionId, paymentId]
  )
}

export async function markSessionRefused(
  tx: EntityManager,
  sessionId: string
): Promise<void> {
  await tx.query(
    `UPDATE payment_session SET status = 'error', updated_at = now() WHERE id = $1`,
    [sessionId]
  )
}

export async function saveCollectionStatus(
  tx: EntityManager,
  collectionId: string,
  status: string,
  authorizedAmount: number
): Promise<CollectionRow> {
  const rows: CollectionRow[] = await tx.query(
    `UPDATE payment_collection
        SET status = $2, authorized_amount = $3, updated_at = now()
      WHERE id = $1
      RETURNING *`,
    [collectionId, status, authorizedAmount]
  )
  // UPDATE ... RETURNING answers [rows, count] through TypeORM's postgres driver.
  const returned = (Array.isArray(rows[0]) ? rows[0] : rows) as CollectionRow[]
  return returned[0]
}

/**
 * "Get a PaymentCollection" with core's default fields and relations
 * (`region`, `payment_sessions`), on one connection, in core's key order.
 */
export async function storeCollectionWithDefaults(
  manager: EntityManager,
  collectionId: string
): Promise<Record<string, unknown> | undefined> {
  const runner = manager.connection.createQueryRunner("slave")
  try {
    const [row] = await runner.query(
      `SELECT id, type, status, description, amount, currency_code, metadata, region_id
         FROM payment_collection
        WHERE id = $1 AND deleted_at IS NULL`,
      [collectionId]
    )
    if (!row) {
      return undefined
    }
    const payment_sessions = await runner.query(
      `SELECT ps.* FROM payment_session ps
         JOIN payment_collection_sessions pcs ON pcs.payment_session_id = ps.id
        WHERE pcs.payment_collection_id = $1
        ORDER BY ps.created_at, ps.id`,
      [collectionId]
    )
    const [region] = await runner.query(
      `SELECT * FROM region WHERE id = $1 AND deleted_at IS NULL`,
      [row.region_id]
    )
    const { region_id: _regionId, ...fields } = row
    return { ...fields, payment_sessions, region: region ?? null }
  } finally {
    await runner.release()
  }
}
