/** The customer a provider is told about, as core's Customer entity has it. */
export type CustomerLike = {
  id: string
  email: string
  first_name: string | null
  last_name: string | null
  phone: string | null
  has_account: boolean
  metadata: Record<string, unknown> | null
}

/** Who pays a collection: a customer when one is known, and the email to send. */
export type Payer = { customer: CustomerLike | null; email: string }
