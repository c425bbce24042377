import { MigrationInterface, QueryRunner } from "typeorm"

type IndexSpec = { name: string; table: string; definition: string }

/**
 * Indexes for what the reconciler reads on every pass, in every backend
 * process, which read whole core tables before (`npm run bench -- --scale`
 * prints their EXPLAIN with and without these):
 *
 * - the Idempotency-Key expiry (PaymentCollectionIdempotencyService.deleteExpired)
 *   scanned all of `idempotency_key` for the plugin's expired keys: a partial
 *   index on the creation time of the plugin's keys (`pcp:`) only;
 * - the status sync (sessionsToCheck) scanned all of `payment_session` for the
 *   sessions still waiting for the shopper: a partial index on the time they
 *   last changed, of the sessions it can ask about only — waiting,
 *   unauthorized, and not a cart's (a payment collection's sessions have no
 *   cart), so the carts' sessions that a store accumulates stay out of it.
 *
 * Both are partial, so a write of core's that none of them covers (a cart's
 * session, core's own keys) does not touch them. Built with a plain CREATE
 * INDEX: Medusa runs all pending migrations in one transaction, which rules
 * out CONCURRENTLY, so writes to those tables wait while each is built (README,
 * "Removing the plugin"); `IF NOT EXISTS` lets an operator build them
 * CONCURRENTLY by hand first.
 */
export class CreatePaymentCollectionReconcilerIndexes1796400000000 implements MigrationInterface {
  name = "CreatePaymentCollectionReconcilerIndexes1796400000000"

  /** What `up` creates and `down` drops (the bench reads this list too). */
  static readonly INDEXES: IndexSpec[] = [
    {
      name: "IDX_pcp_idempotency_key_created_at",
      table: "idempotency_key",
      definition: `("created_at") WHERE "idempotency_key" LIKE 'pcp:%'`,
    },
    {
      name: "IDX_pcp_payment_session_waiting",
      table: "payment_session",
      definition: `("updated_at") WHERE "status" IN ('pending', 'requires_more') AND "payment_authorized_at" IS NULL AND "cart_id" IS NULL`,
    },
  ]

  public async up(queryRunner: QueryRunner): Promise<void> {
    for (const index of CreatePaymentCollectionReconcilerIndexes1796400000000.INDEXES) {
      await queryRunner.query(`CREATE INDEX IF NOT EXISTS "${index.name}" ON "${index.table}" ${index.definition}`)
    }
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    for (const index of [...CreatePaymentCollectionReconcilerIndexes1796400000000.INDEXES].reverse()) {
      await queryRunner.query(`DROP INDEX IF EXISTS "${index.name}"`)
    }
  }
}
