import { Column, Entity, JoinColumn, ManyToOne, PrimaryColumn } from "typeorm"
import { PaymentCollection } from "./payment-collection"

/**
 * One call of the plugin to a payment provider, and how it ended: the attempt
 * journal (see journal/attempt-types.ts for its states). The relation to
 * the collection has no foreign key in the database (see the migration).
 */
@Entity({ name: "payment_collection_attempt" })
export class PaymentCollectionAttempt {
  @PrimaryColumn({ type: "varchar" })
  id: string

  @Column({ type: "varchar" })
  payment_collection_id: string

  @ManyToOne(() => PaymentCollection, (collection) => collection.attempts, {
    createForeignKeyConstraints: false,
  })
  @JoinColumn({ name: "payment_collection_id" })
  payment_collection: PaymentCollection

  @Column({ type: "varchar", nullable: true })
  payment_session_id: string | null

  @Column({ type: "varchar" })
  provider_id: string

  @Column({ type: "varchar" })
  operation: string

  @Column({ type: "varchar" })
  state: string

  @Column({ type: "varchar", nullable: true })
  outcome: string | null

  @Column({ type: "varchar", nullable: true })
  error_code: string | null

  @Column({ type: "text", nullable: true })
  error_message: string | null

  @Column({ type: "int", nullable: true })
  amount: number | null

  @Column({ type: "varchar", nullable: true })
  currency_code: string | null

  /** What an undo needs (a Stripe intent with its client_secret): never selected, never shown. */
  @Column({ type: "jsonb", nullable: true, select: false })
  provider_data: Record<string, unknown> | null

  @Column({ type: "varchar", nullable: true })
  request_id: string | null

  @Column({ type: "varchar", nullable: true })
  idempotency_key: string | null

  @Column({ type: "varchar" })
  process: string

  @Column({ type: "timestamptz" })
  lease_until: Date

  @Column({ type: "int", default: 0 })
  recovery_attempts: number

  @Column({ type: "timestamptz", nullable: true })
  next_attempt_at: Date | null

  @Column({ type: "varchar", nullable: true })
  resolved_by: string | null

  @Column({ type: "timestamptz" })
  created_at: Date

  @Column({ type: "timestamptz", nullable: true })
  answered_at: Date | null

  @Column({ type: "timestamptz", nullable: true })
  finished_at: Date | null

  @Column({ type: "int", nullable: true })
  latency_ms: number | null

  /** When the row first needed a person (state needs_attention). */
  @Column({ type: "timestamptz", nullable: true })
  attention_at: Date | null
}
