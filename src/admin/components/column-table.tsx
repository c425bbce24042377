import { Table } from "@medusajs/ui"
import type { ReactNode } from "react"

export type Column = { label: string; numeric?: boolean }

/** A table that scrolls sideways on narrow screens, with one header row of these columns. */
export const ColumnTable = ({ columns, children }: { columns: Column[]; children: ReactNode }) => (
  <div className="overflow-x-auto">
    <Table>
      <Table.Header>
        <Table.Row>
          {columns.map(({ label, numeric }) => (
            <Table.HeaderCell key={label} className={numeric ? "text-right" : undefined}>
              {label}
            </Table.HeaderCell>
          ))}
        </Table.Row>
      </Table.Header>
      <Table.Body>{children}</Table.Body>
    </Table>
  </div>
)
