import { db } from "./factories"
import { psp } from "./fake-psp"
import { HttpResponse } from "./http"

// What a refused request must leave untouched, and what must hold after any
// request: read straight from the database (and the fake PSP).

export interface CollectionState {
  collection: any
  sessions: any[]
  payments: any[]
}

/** The collection's row with its linked sessions and payments, each sorted by id. */
export async function collectionState(collectionId: string): Promise<CollectionState> {
  const [collection, sessions, payments] = await Promise.all([
    db.query(`SELECT * FROM payment_collection WHERE id = $1`, [collectionId]),
    db.query(
      `SELECT ps.* FROM payment_session ps
         JOIN payment_collection_sessions pcs ON pcs.payment_session_id = ps.id
        WHERE pcs.payment_collection_id = $1
        ORDER BY ps.id`,
      [collectionId]
    ),
    db.query(
      `SELECT p.* FROM payment p
         JOIN payment_collection_payments pcp ON pcp.payment_id = p.id
        WHERE pcp.payment_collection_id = $1
        ORDER BY p.id`,
      [collectionId]
    ),
  ])
  return { collection: collection.rows[0] ?? null, sessions: sessions.rows, payments: payments.rows }
}

/** Row counts of every table a payment collection request could write. */
export async function paymentTableCounts(): Promise<Record<string, number>> {
  const { rows } = await db.query(
    `SELECT (SELECT count(*) FROM payment_collection)::int          AS payment_collection,
            (SELECT count(*) FROM payment_session)::int             AS payment_session,
            (SELECT count(*) FROM payment)::int                     AS payment,
            (SELECT count(*) FROM payment_collection_sessions)::int AS payment_collection_sessions,
            (SELECT count(*) FROM payment_collection_payments)::int AS payment_collection_payments`
  )
  return rows[0]
}

/** Everything a refused request must not change: collections, tables, the PSP's calls and intents. */
export async function worldSnapshot(collectionIds: string[]) {
  const [collections, counts, provider] = await Promise.all([
    Promise.all(collectionIds.map(collectionState)),
    paymentTableCounts(),
    psp.state(),
  ])
  return { collections, counts, providerCalls: provider.calls, providerIntents: provider.intents }
}

/** Medusa's error body: `{ type, message }` (and an optional `code`), as JSON. */
export function expectMedusaError(res: HttpResponse, status: number, type: string): void {
  const seen = { status: res.status, body: res.body }
  expect(seen).toEqual({
    status,
    body: expect.objectContaining({ type, message: expect.any(String) }),
  })
  expect(res.headers["content-type"]).toMatch(/^application\/json/)
}

/**
 * payment_session rows naming one of the collection's intents at the fake PSP
 * that no collection links: what a half-done write on this collection leaves
 * behind (orphanSessions() in helpers/payments.ts looks at the whole database,
 * other specs' collections included).
 */
export async function orphanSessionsOf(collectionId: string): Promise<any[]> {
  const intentIds = (await psp.intents({ resourceId: collectionId })).map((intent) => intent.id)
  const { rows } = await db.query(
    `SELECT ps.* FROM payment_session ps
      WHERE ps.data->>'id' = ANY($1)
        AND NOT EXISTS (SELECT 1 FROM payment_collection_sessions pcs WHERE pcs.payment_session_id = ps.id)`,
    [intentIds]
  )
  return rows
}
