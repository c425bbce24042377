import { CustomerLike, Payer } from "../types/payer"

/**
 * What a payment provider receives for a payment collection's session: the
 * object core 1.20 builds (PaymentCollectionService's `inputData`, turned into
 * a context by PaymentProviderService.buildPaymentProcessorContext), with one
 * difference: core drops the customer on the way (a provider gets only the
 * logged-in customer's email), the plugin passes who pays — the order's
 * customer, else the logged-in one — so that a provider can keep one customer
 * of its own per Medusa customer (README, Differences from core).
 */
export type ProcessorContext = {
  cart: CollectionCart
  amount: number
  currency_code: string
  resource_id: string
  billing_address?: undefined
} & CollectionCart

type CollectionCart = {
  email: string
  customer?: CustomerLike
  context: Record<string, unknown>
  shipping_methods: never[]
  shipping_address: null
  id: string
  region_id: string
  total: number
}

export function processorContext(
  collection: { id: string; region_id: string; currency_code: string },
  amount: number,
  payer: Payer | null
): ProcessorContext {
  const cart: CollectionCart = {
    email: payer?.email ?? "",
    ...(payer?.customer ? { customer: payer.customer } : {}),
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
