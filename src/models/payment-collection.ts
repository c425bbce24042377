import { Entity, OneToMany } from "typeorm"
import { PaymentCollection as MedusaPaymentCollection } from "@medusajs/medusa"
import { PaymentCollectionAttempt } from "./payment-collection-attempt"

/**
 * Core's PaymentCollection, registered through Medusa's entity-extension
 * convention so that core services and repositories and this plugin share one
 * entity class. The plugin adds no columns to core's table: its own state
 * lives in its own tables, such as the attempt journal below.
 */
@Entity()
export class PaymentCollection extends MedusaPaymentCollection {
  @OneToMany(() => PaymentCollectionAttempt, (attempt) => attempt.payment_collection)
  attempts: PaymentCollectionAttempt[]
}
