/**
 * What a payment provider receives for a payment collection's session: the
 * same object core 1.20 builds (PaymentCollectionService's `inputData`, turned
 * into a context by PaymentProviderService.buildPaymentProcessorContext), so a
 * provider cannot tell the plugin from core. Core copies the cart's fields
 * onto the context and never the customer: a provider gets the logged-in
 * customer's email, not the customer.
 */
export type ProcessorContext = {
  cart: CollectionCart
  amount: number
  currency_code: string
  resource_id: string
  customer?: undefined
  billing_address?: undefined
} & CollectionCart

type CollectionCart = {
  email: string
  context: Record<string, unknown>
  shipping_methods: never[]
  shipping_address: null
  id: string
  region_id: string
  total: number
}

export type CustomerLike = { id: string; email: string | null }

export function processorContext(
  collection: { id: string; region_id: string; currency_code: string },
  amount: number,
  customer: CustomerLike | null
): ProcessorContext {
  const cart: CollectionCart = {
    email: customer?.email || "",
    context: {},
    shipping_methods: [],
    shipping_address: null,
    id: "",
    region_id: collection.region_id,
    total: amount,
  }
  return {
    cart,
    amount,
    currency_code: collection.currency_code,
    resource_id: collection.id,
    ...cart,
  }
}

/**
 * What a processor's initiatePayment and updatePayment receive (core's
 * PaymentProviderService builds the same object from the context).
 */
export function processorInput(context: ProcessorContext, paymentSessionData: Record<string, unknown>) {
  return {
    amount: context.amount,
    context: context.context,
    currency_code: context.currency_code,
    customer: context.customer,
    email: context.email,
    billing_address: context.billing_address,
    resource_id: context.resource_id,
    paymentSessionData,
  }
}
