export { default as PaymentCollectionSessionService } from "./services/payment-collection-session"
export type { PluginOptions } from "./types/options"
