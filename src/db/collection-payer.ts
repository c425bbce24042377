import { EntityManager } from "typeorm"
import { CustomerLike, Payer } from "../types/payer"

/** A row of the plugin's SQL function pcp_payer_v1 (or of its JSON). */
export type PayerRow = CustomerLike & { payer_email: string | null }

/** Who pays, from pcp_payer_v1's row: the customer, and the order's email (else the customer's). */
export function payerFrom(row: PayerRow | undefined): Payer {
  if (!row) {
    return { customer: null, email: "" }
  }
  const { payer_email, ...customer } = row
  return { customer, email: payer_email || customer.email || "" }
}

/**
 * Who pays a collection: the customer of the order whose edit it pays (and the
 * order's email), else the logged-in customer of the request, else nobody
 * (the plugin's SQL function pcp_payer_v1; a locked read answers it too).
 * Passing the customer lets a provider keep one customer of its own per Medusa
 * customer (medusa-payment-stripe reads `metadata.stripe_id`).
 */
export async function payerOf(tx: EntityManager, collectionId: string, loggedInCustomerId?: string): Promise<Payer> {
  const [row]: PayerRow[] = await tx.query(`SELECT * FROM pcp_payer_v1($1, $2)`, [collectionId, loggedInCustomerId ?? null])
  return payerFrom(row)
}
