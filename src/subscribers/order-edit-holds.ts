import type { SubscriberArgs, SubscriberConfig } from "@medusajs/medusa"
import type PaymentCollectionHoldsService from "../services/payment-collection-holds"

/** An order edit declined by the shopper or canceled by the admin: the holds of its payment collection go. */
export default async function releaseOrderEditHolds({ data, container }: SubscriberArgs<{ id: string }>): Promise<void> {
  const holds: PaymentCollectionHoldsService = container.resolve("paymentCollectionHoldsService")
  await holds.releaseForOrderEdit(data.id)
}

export const config: SubscriberConfig = {
  event: ["order-edit.declined", "order-edit.canceled"],
  context: { subscriberId: "medusa-plugin-payment-collections:release-holds" },
}
