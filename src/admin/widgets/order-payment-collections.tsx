import type { OrderDetailsWidgetProps, WidgetConfig } from "@medusajs/admin"
import { Container, Heading, Text } from "@medusajs/ui"
import { useAdminCustomQuery } from "medusa-react"
import { errorMessage } from "../components/format"
import { PaymentCollectionCard } from "../components/payment-collection-card"
import type { OrderPaymentCollectionsRes } from "../components/types"

// Every file in widgets/ is loaded as a widget: shared pieces live in ../components.
// In production a widget that throws renders nothing, so failures are shown, not thrown.
const OrderPaymentCollectionsWidget = ({ order }: OrderDetailsWidgetProps) => {
  const { data, isLoading, isError, error } = useAdminCustomQuery<
    Record<string, never>,
    OrderPaymentCollectionsRes
  >(`/orders/${encodeURIComponent(order.id)}/payment-collections`, ["order-payment-collections", order.id])

  if (isLoading) {
    return null
  }
  if (isError) {
    return (
      <Container data-testid="order-payment-collections-error">
        <Heading level="h2">Payment collections</Heading>
        <Text size="small" className="text-ui-fg-error" role="alert">
          The payment collections of this order could not be loaded: {errorMessage(error)}
        </Text>
      </Container>
    )
  }
  const collections = data?.payment_collections ?? []
  if (collections.length === 0) {
    return null
  }
  return (
    <Container className="flex flex-col gap-y-4" data-testid="order-payment-collections">
      <div>
        <Heading level="h2">Payment collections</Heading>
        <Text size="small" className="text-ui-fg-subtle">
          What shoppers paid for this order&apos;s edits, and every call made to a payment provider.
        </Text>
      </div>
      {collections.map((collection) => (
        <PaymentCollectionCard key={collection.id} collection={collection} />
      ))}
    </Container>
  )
}

export const config: WidgetConfig = {
  zone: "order.details.after",
}

export default OrderPaymentCollectionsWidget
