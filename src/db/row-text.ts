/**
 * Rows that the plugin's SQL functions hand back as text (`row::text`, a
 * composite literal such as `(ps_1,,manual,"{""a"": 1}",t)`), turned into the
 * objects node-postgres would have made of the same columns: each field goes
 * through pg's own parser for the column's type, so dates, jsonb, integers
 * and enums come out exactly as from a plain SELECT (and TypeORM).
 *
 * Why text: one function call can then answer rows of several tables, with
 * whatever columns each table has here (a merchant's extended entity
 * included), and PostgreSQL plans the function's statements once per
 * connection instead of on every request.
 */

/**
 * The fields of a composite literal, as PostgreSQL's record_out writes it:
 * an empty unquoted field is NULL; a quoted one doubles `"` and escapes with `\`.
 */
export function recordFields(text: string): (string | null)[] {
  if (text[0] !== "(" || text[text.length - 1] !== ")") {
    throw new Error(`not a row literal: ${text.slice(0, 40)}`)
  }
  const fields: (string | null)[] = []
  const end = text.length - 1
  let i = 1
  for (;;) {
    let value = ""
    let quoted = false
    while (i < end && text[i] !== ",") {
      const ch = text[i]
      if (ch === '"') {
        quoted = true
        i++
        while (i < end) {
          if (text[i] === '"') {
            if (text[i + 1] === '"') {
              value += '"'
              i += 2
              continue
            }
            i++
            break
          }
          if (text[i] === "\\") {
            i++
          }
          value += text[i]
          i++
        }
      } else if (ch === "\\") {
        value += text[i + 1]
        i += 2
      } else {
        value += ch
        i++
      }
    }
    fields.push(value === "" && !quoted ? null : value)
    if (i >= end) {
      return fields
    }
    i++ // the comma
  }
}

export type ColumnType = { name: string; typeId: number }
export type TypeParser = (value: string) => unknown

/** One table's columns, in the order its row literal lists them, with their parsers. */
export class RowShape {
  private readonly parsers: TypeParser[]

  constructor(
    readonly columns: ColumnType[],
    parserFor: (typeId: number) => TypeParser
  ) {
    this.parsers = columns.map((c) => parserFor(c.typeId))
  }

  /** Undefined when the literal has another number of fields (the table changed since the shape was read). */
  decode(text: string): Record<string, unknown> | undefined {
    const fields = recordFields(text)
    if (fields.length !== this.columns.length) {
      return undefined
    }
    const row: Record<string, unknown> = {}
    for (let i = 0; i < fields.length; i++) {
      const field = fields[i]
      row[this.columns[i].name] = field === null ? null : this.parsers[i](field)
    }
    return row
  }
}
