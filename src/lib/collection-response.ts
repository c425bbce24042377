import { COLLECTION_COLUMNS, CollectionRow, RegionWithProviders, SESSION_COLUMNS, SessionRow } from "./collection-queries"

/** `{ payment_collection }` of the session endpoints, as core answers it. */
export type CollectionWithSessions = CollectionRow & {
  region: RegionWithProviders["region"]
  payment_sessions: SessionRow[]
}

/** `{ payment_collection }` of the batch authorize endpoint, as core answers it. */
export type CollectionWithPayments = CollectionRow & {
  payment_sessions: SessionRow[]
  payments: Record<string, unknown>[]
}

function pick<T>(row: Record<string, unknown>, columns: readonly string[]): T {
  return Object.fromEntries(columns.map((c) => [c, row[c]])) as T
}

/** A session with exactly core's columns, whichever statement read or wrote it. */
export function sessionResponse(session: SessionRow): SessionRow {
  return pick<SessionRow>(session, SESSION_COLUMNS)
}

/**
 * The collection with its region and sessions: the same fields in the same
 * order whether the answer came from the lock-free read or a locked write.
 */
export function collectionWithSessions(
  collection: CollectionRow,
  region: RegionWithProviders["region"],
  sessions: SessionRow[]
): CollectionWithSessions {
  return {
    ...pick<CollectionRow>(collection, COLLECTION_COLUMNS),
    region,
    payment_sessions: sessions.map(sessionResponse),
  }
}

export function collectionWithPayments(
  collection: CollectionRow,
  sessions: SessionRow[],
  payments: Record<string, unknown>[]
): CollectionWithPayments {
  return {
    ...pick<CollectionRow>(collection, COLLECTION_COLUMNS),
    payment_sessions: sessions.map(sessionResponse),
    payments,
  }
}
