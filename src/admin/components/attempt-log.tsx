import { Table, Text } from "@medusajs/ui"
import { useAdminCustomQuery } from "medusa-react"
import { useState } from "react"
import { Column, ColumnTable } from "./column-table"
import { errorMessage, formatTime } from "./format"
import { Status } from "./status-badge"
import type { AttemptPage } from "./types"

const ATTEMPT_COLUMNS: Column[] = [
  { label: "Time" },
  { label: "Provider" },
  { label: "Operation" },
  { label: "Outcome" },
  { label: "Latency", numeric: true },
  { label: "Error" },
]

type Props = {
  collectionId: string
  /** The first page, as the order route answered it (same size as every page). */
  firstPage: AttemptPage
}

/**
 * Every call the plugin made to a provider for one collection, newest first.
 * Page 1 comes with the order's collections; later pages from
 * GET /admin/payment-collections/:id/attempts.
 */
export const AttemptLog = ({ collectionId, firstPage }: Props) => {
  const pageSize = firstPage.limit
  const [pageIndex, setPageIndex] = useState(0)
  const later = useAdminCustomQuery<{ limit: number; offset: number }, AttemptPage>(
    `/payment-collections/${encodeURIComponent(collectionId)}/attempts`,
    ["payment-collection-attempts", collectionId],
    { limit: pageSize, offset: pageIndex * pageSize },
    { enabled: pageIndex > 0, keepPreviousData: true }
  )
  const page: AttemptPage | undefined = pageIndex === 0 ? firstPage : later.data
  const count = page?.count ?? firstPage.count
  const pageCount = Math.max(1, Math.ceil(count / pageSize))

  if (firstPage.count === 0) {
    return (
      <Text size="small" className="text-ui-fg-subtle">
        No provider calls recorded for this collection.
      </Text>
    )
  }

  return (
    <div data-testid={`attempt-log-${collectionId}`}>
      {pageIndex > 0 && later.isError ? (
        <Text size="small" className="text-ui-fg-error">
          Could not load this page of the attempt log: {errorMessage(later.error)}
        </Text>
      ) : (
        <ColumnTable columns={ATTEMPT_COLUMNS}>
          {(page?.attempts ?? []).map((attempt) => (
            <Table.Row key={attempt.id} data-testid="attempt-row">
              <Table.Cell className="whitespace-nowrap">{formatTime(attempt.created_at)}</Table.Cell>
              <Table.Cell>{attempt.provider_id}</Table.Cell>
              <Table.Cell>{attempt.operation}</Table.Cell>
              <Table.Cell>
                <Status value={attempt.outcome ?? attempt.state} />
              </Table.Cell>
              <Table.Cell className="text-right">
                {attempt.latency_ms === null ? "–" : `${attempt.latency_ms} ms`}
              </Table.Cell>
              <Table.Cell className="min-w-[200px] whitespace-normal break-words">
                {[attempt.error_code, attempt.error_message].filter(Boolean).join(": ") || "–"}
              </Table.Cell>
            </Table.Row>
          ))}
        </ColumnTable>
      )}
      {pageCount > 1 && (
        <Table.Pagination
          count={count}
          pageSize={pageSize}
          pageIndex={pageIndex}
          pageCount={pageCount}
          canPreviousPage={pageIndex > 0}
          canNextPage={pageIndex + 1 < pageCount}
          previousPage={() => setPageIndex((i) => Math.max(0, i - 1))}
          nextPage={() => setPageIndex((i) => Math.min(pageCount - 1, i + 1))}
        />
      )}
    </div>
  )
}
