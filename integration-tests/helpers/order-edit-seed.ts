import path from "path"

export interface Shop {
  regionId: string
  countryCode: string
  shippingOptionId: string
  variantId: string
}

export interface PaymentSplit {
  provider_id: string
  amount: number
}

interface OrderEditSeed {
  createShop(
    url: string,
    options: { adminHeaders: Record<string, string>; countryCode: string; currency?: string; name?: string }
  ): Promise<Shop>
  placeOrder(url: string, shop: Shop, options?: { email?: string }): Promise<any>
  requestOrderEdit(
    url: string,
    shop: Shop,
    orderId: string,
    options: { adminHeaders: Record<string, string>; quantity?: number; description?: string }
  ): Promise<any>
  /** `pspUrl`: the fake PSP the backend's test-pay talks to, where the shopper confirms. */
  payCollection(url: string, collectionId: string, split: PaymentSplit[], options: { pspUrl: string }): Promise<any>
  completeOrderEdit(url: string, orderEditId: string): Promise<any>
  seedOrderWithPaidEdit(
    url: string,
    shop: Shop,
    options: { adminHeaders: Record<string, string>; email?: string; pspUrl: string }
  ): Promise<{ order: any; orderEdit: any; collection: any }>
}

// Plain CommonJS shared with the demo (`npm start`); typed here instead of allowJs.
// eslint-disable-next-line @typescript-eslint/no-var-requires
export const orderEditSeed: OrderEditSeed = require(path.resolve(__dirname, "../../scripts/lib/order-edit-seed.js"))
