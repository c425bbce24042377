// The JSON the plugin's admin routes answer, as the dashboard receives it
// (dates are ISO strings). The server side: services/payment-collection-provider.ts,
// services/order-payment-collections.ts, journal/attempt-log.ts.

export type ProviderView = {
  id: string
  is_installed: boolean
  is_enabled: boolean
  regions: { id: string; name: string }[]
}

export type ProvidersRes = { providers: ProviderView[] }
export type ProviderRes = { provider: ProviderView }

export type AttemptView = {
  id: string
  session_id: string | null
  provider_id: string
  operation: string
  state: string
  outcome: string | null
  error_code: string | null
  error_message: string | null
  amount: number | null
  latency_ms: number | null
  request_id: string | null
  created_at: string
}

export type AttemptPage = { attempts: AttemptView[]; count: number; limit: number; offset: number }

export type SessionView = {
  id: string
  provider_id: string
  amount: number
  status: string
  payment_authorized_at: string | null
  created_at: string
}

export type PaymentView = {
  id: string
  provider_id: string
  amount: number
  currency_code: string
  amount_refunded: number
  captured_at: string | null
  canceled_at: string | null
  created_at: string
}

export type PaymentCollectionView = {
  id: string
  status: string
  amount: number
  authorized_amount: number | null
  currency_code: string
  description: string | null
  created_at: string
  order_edit: { id: string; status: string }
  payment_sessions: SessionView[]
  payments: PaymentView[]
  /** Provider calls of this collection that the plugin cannot settle alone. */
  needs_attention: number
  attempts: AttemptPage
}

export type OrderPaymentCollectionsRes = { payment_collections: PaymentCollectionView[] }
