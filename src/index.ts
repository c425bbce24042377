export { default as PaymentCollectionSessionService } from "./services/payment-collection-session"
export { default as PaymentCollectionAuthorizationService } from "./services/payment-collection-authorization"
export type { PluginOptions } from "./types/options"
