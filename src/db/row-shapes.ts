import { EntityManager } from "typeorm"
import { ColumnType, RowShape, TypeParser } from "./row-text"

/** The tables whose rows the plugin's SQL functions answer as text. */
export type RowTable = "payment_collection" | "payment_session" | "region" | "payment"
const ROW_TABLES: RowTable[] = ["payment_collection", "payment_session", "region", "payment"]

type RowShapes = Map<RowTable, RowShape>

type PgDriver = { postgres: { types: { getTypeParser: (oid: number, format: "text") => TypeParser } } }

/**
 * Turns the row text of the plugin's SQL functions into the objects pg (and
 * TypeORM) would make of the same rows, and orders their keys as core's
 * entities do. One per process (held by the PaymentCollectionStoreService):
 * the columns of each table are read on first use and again when a row no
 * longer fits (a migration changed the table); entity metadata does not change
 * at runtime.
 */
export class RowDecoder {
  private shapes: Promise<RowShapes> | undefined
  private readonly entityOrders = new Map<string, [string, string][] | null>()

  /** Decodes the `[table, text]` rows of one function call. */
  async decode(manager: EntityManager, rows: [RowTable, string][]): Promise<Record<string, unknown>[]> {
    this.shapes ??= this.loadShapes(manager)
    const current = this.shapes
    const decoded = decodeWith(await current, rows)
    if (decoded) {
      return decoded
    }
    if (this.shapes === current) {
      this.shapes = this.loadShapes(manager)
    }
    const again = decodeWith(await this.shapes, rows)
    if (!again) {
      throw new Error("A payment collection row does not match its table's columns")
    }
    return again
  }

  /**
   * The row with its keys in the order core's entity lists the table's columns
   * (TypeORM's metadata, a merchant's extension included): the order core's
   * responses serialize them in. Columns the entity does not map are left out,
   * as core leaves them out.
   */
  inEntityOrder(manager: EntityManager, table: RowTable, row: Record<string, unknown>): Record<string, unknown> {
    let order = this.entityOrders.get(table)
    if (order === undefined) {
      const metadata = manager.connection.entityMetadatas.find((m) => m.tableName === table)
      order = metadata
        ? metadata.columns.filter((c) => !c.isVirtual).map((c) => [c.propertyName, c.databaseName] as [string, string])
        : null
      this.entityOrders.set(table, order)
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

  private loadShapes(manager: EntityManager): Promise<RowShapes> {
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
      if (this.shapes === loaded) {
        this.shapes = undefined
      }
    })
    return loaded
  }
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
