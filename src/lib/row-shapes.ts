import { EntityManager } from "typeorm"
import { ColumnType, RowShape, TypeParser } from "./row-text"

/** The tables whose rows the plugin's SQL functions answer as text. */
export type RowTable = "payment_collection" | "payment_session" | "region" | "payment"
const ROW_TABLES: RowTable[] = ["payment_collection", "payment_session", "region", "payment"]

export type RowShapes = Map<RowTable, RowShape>

type PgDriver = { postgres: { types: { getTypeParser: (oid: number, format: "text") => TypeParser } } }

/**
 * One per process: the columns of each table as the server has them (the
 * search_path's table, as the functions see it), read on first use and again
 * when a row no longer fits (a migration changed the table).
 */
let shapes: Promise<RowShapes> | undefined

function loadShapes(manager: EntityManager): Promise<RowShapes> {
  const { types } = (manager.connection.driver as unknown as PgDriver).postgres
  const loaded = manager
    .query(
      `SELECT c.relname AS table, a.attname AS name, a.atttypid::int AS type_id
         FROM unnest($1::text[]) AS t(name)
         JOIN pg_class c ON c.oid = to_regclass(t.name)
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY c.relname, a.attnum`,
      [ROW_TABLES]
    )
    .then((rows: { table: RowTable; name: string; type_id: number }[]) => {
      const columns = new Map<RowTable, ColumnType[]>(ROW_TABLES.map((t) => [t, []]))
      for (const row of rows) {
        columns.get(row.table)?.push({ name: row.name, typeId: row.type_id })
      }
      return new Map(
        [...columns].map(([table, cols]) => [table, new RowShape(cols, (oid) => types.getTypeParser(oid, "text"))])
      )
    })
  // A failed read is not remembered: the next request reads again.
  loaded.catch(() => {
    if (shapes === loaded) {
      shapes = undefined
    }
  })
  return loaded
}

/** Decodes the `[table, text]` rows of one function call, each into the object pg would make of it. */
export async function decodeRows(
  manager: EntityManager,
  rows: [RowTable, string][]
): Promise<Record<string, unknown>[]> {
  shapes ??= loadShapes(manager)
  const current = shapes
  const decoded = decodeWith(await current, rows)
  if (decoded) {
    return decoded
  }
  if (shapes === current) {
    shapes = loadShapes(manager)
  }
  const again = decodeWith(await shapes, rows)
  if (!again) {
    throw new Error("A payment collection row does not match its table's columns")
  }
  return again
}

function decodeWith(known: RowShapes, rows: [RowTable, string][]): Record<string, unknown>[] | undefined {
  const out: Record<string, unknown>[] = []
  for (const [table, text] of rows) {
    const row = known.get(table)?.decode(text)
    if (!row) {
      return undefined
    }
    out.push(row)
  }
  return out
}

/**
 * The order in which core's entity lists a table's columns (TypeORM's
 * metadata, a merchant's extension included): the order core's responses
 * serialize them in. Columns the entity does not map are left out, as core
 * leaves them out. Read once per process; metadata does not change at runtime.
 */
const entityOrders = new Map<string, [string, string][] | null>()

export function inEntityOrder(manager: EntityManager, table: RowTable, row: Record<string, unknown>): Record<string, unknown> {
  let order = entityOrders.get(table)
  if (order === undefined) {
    const metadata = manager.connection.entityMetadatas.find((m) => m.tableName === table)
    order = metadata
      ? metadata.columns.filter((c) => !c.isVirtual).map((c) => [c.propertyName, c.databaseName] as [string, string])
      : null
    entityOrders.set(table, order)
  }
  if (!order) {
    return row
  }
  const ordered: Record<string, unknown> = {}
  for (const [property, column] of order) {
    if (column in row) {
      ordered[property] = row[column]
    }
  }
  return ordered
}
