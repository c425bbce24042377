import { Heading, StatusBadge, Table, Text } from "@medusajs/ui"
import type { ReactNode } from "react"
import { AttemptLog } from "./attempt-log"
import { Column, ColumnTable } from "./column-table"
import { formatAmount, formatTime } from "./format"
import { Status } from "./status-badge"
import type { PaymentCollectionView } from "./types"

const Fact = ({ label, children }: { label: string; children: ReactNode }) => (
  <div className="flex flex-col">
    <Text size="small" className="text-ui-fg-subtle">
      {label}
    </Text>
    <Text size="small" weight="plus">
      {children}
    </Text>
  </div>
)

const SESSION_COLUMNS: Column[] = [
  { label: "Provider" },
  { label: "Amount", numeric: true },
  { label: "Status" },
  { label: "Authorized at" },
]

const PAYMENT_COLUMNS: Column[] = [
  { label: "Provider" },
  { label: "Amount", numeric: true },
  { label: "Refunded", numeric: true },
  { label: "Captured" },
  { label: "Canceled" },
]

/** A titled part of the card: a note when there is nothing to list, else its table. */
const ListSection = ({ title, empty, children }: { title: string; empty: string | false; children: ReactNode }) => (
  <div className="flex flex-col gap-y-2">
    <Heading level="h3">{title}</Heading>
    {empty ? (
      <Text size="small" className="text-ui-fg-subtle">
        {empty}
      </Text>
    ) : (
      children
    )}
  </div>
)

/** One payment collection of an order edit: its totals, sessions, payments and attempt log. */
export const PaymentCollectionCard = ({ collection }: { collection: PaymentCollectionView }) => {
  const currency = collection.currency_code
  return (
    <section
      className="border-ui-border-base flex flex-col gap-y-4 rounded-lg border p-4"
      data-testid={`payment-collection-${collection.id}`}
    >
      <div className="flex flex-wrap items-start justify-between gap-4">
        <div className="flex flex-col">
          <Text size="small" weight="plus">
            {collection.description || "Payment collection"}
          </Text>
          <Text size="xsmall" className="text-ui-fg-subtle font-mono">
            {collection.id} · order edit {collection.order_edit.id} ({collection.order_edit.status})
          </Text>
        </div>
        <div className="flex items-center gap-x-2">
          {collection.needs_attention > 0 && (
            <StatusBadge color="red" className="whitespace-nowrap" data-testid="needs-attention">
              {collection.needs_attention} {collection.needs_attention === 1 ? "call needs" : "calls need"} attention
            </StatusBadge>
          )}
          <Status value={collection.status} />
        </div>
      </div>

      <div className="grid grid-cols-3 gap-4">
        <Fact label="Amount">{formatAmount(collection.amount, currency)}</Fact>
        <Fact label="Authorized">{formatAmount(collection.authorized_amount ?? 0, currency)}</Fact>
        <Fact label="Created">{formatTime(collection.created_at)}</Fact>
      </div>

      <ListSection title="Sessions" empty={collection.payment_sessions.length === 0 && "No payment sessions."}>
        <ColumnTable columns={SESSION_COLUMNS}>
          {collection.payment_sessions.map((session) => (
            <Table.Row key={session.id} data-testid="session-row">
              <Table.Cell>{session.provider_id}</Table.Cell>
              <Table.Cell className="text-right">{formatAmount(session.amount, currency)}</Table.Cell>
              <Table.Cell>
                <Status value={session.status} />
              </Table.Cell>
              <Table.Cell>{formatTime(session.payment_authorized_at)}</Table.Cell>
            </Table.Row>
          ))}
        </ColumnTable>
      </ListSection>

      <ListSection title="Payments" empty={collection.payments.length === 0 && "No payments yet."}>
        <ColumnTable columns={PAYMENT_COLUMNS}>
          {collection.payments.map((payment) => (
            <Table.Row key={payment.id} data-testid="payment-row">
              <Table.Cell>{payment.provider_id}</Table.Cell>
              <Table.Cell className="text-right">{formatAmount(payment.amount, payment.currency_code)}</Table.Cell>
              <Table.Cell className="text-right">
                {formatAmount(payment.amount_refunded, payment.currency_code)}
              </Table.Cell>
              <Table.Cell>{formatTime(payment.captured_at)}</Table.Cell>
              <Table.Cell>{formatTime(payment.canceled_at)}</Table.Cell>
            </Table.Row>
          ))}
        </ColumnTable>
      </ListSection>

      <div className="flex flex-col gap-y-2">
        <Heading level="h3">Attempt log</Heading>
        <AttemptLog collectionId={collection.id} firstPage={collection.attempts} />
      </div>
    </section>
  )
}
