import type { SubscriberArgs, SubscriberConfig } from "@medusajs/medusa"
import type PaymentCollectionProviderEventsService from "../services/payment-collection-provider-events"

/** The part of a Stripe event the plugin reads: which intent it is about. */
type StripeEvent = {
  id?: string
  type?: string
  data?: { object?: { id?: string; object?: string; metadata?: Record<string, string> | null } }
}

/**
 * medusa-payment-stripe's webhook route emits every Stripe event as
 * `medusa.stripe_payment_intent_update`; its own subscriber handles carts
 * only. For an intent of a payment collection (`metadata.resource_id`
 * `paycol_…`), the plugin asks Stripe (through the provider) what the intent
 * holds and records it — whatever the event's type or order.
 */
export default async function onStripePaymentIntentUpdate({ data, container }: SubscriberArgs<StripeEvent>): Promise<void> {
  const intent = data?.data?.object
  const collectionId = intent?.metadata?.resource_id
  if (intent?.object !== "payment_intent" || !intent.id || !collectionId?.startsWith("paycol_")) {
    return
  }
  const events: PaymentCollectionProviderEventsService = container.resolve("paymentCollectionProviderEventsService")
  await events.onProviderUpdate({ collectionId, data: intent as Record<string, unknown>, eventId: data.id })
}

export const config: SubscriberConfig = {
  event: "medusa.stripe_payment_intent_update",
  context: { subscriberId: "medusa-plugin-payment-collections:stripe-payment-intent" },
}
