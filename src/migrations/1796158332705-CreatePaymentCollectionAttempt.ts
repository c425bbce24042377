import { MigrationInterface, QueryRunner } from "typeorm"

/**
 * The attempt journal: one row per provider call the plugin makes.
 *
 * No foreign key to payment_collection: a row is inserted on a connection of
 * its own while the request's transaction holds the collection row FOR UPDATE,
 * and an FK check would take FOR KEY SHARE on that row and wait for the very
 * transaction that waits for the insert.
 */
export class CreatePaymentCollectionAttempt1796158332705 implements MigrationInterface {
  name = "CreatePaymentCollectionAttempt1796158332705"

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE IF NOT EXISTS "payment_collection_attempt" (
        "id" character varying NOT NULL,
        "payment_collection_id" character varying NOT NULL,
        "payment_session_id" character varying,
        "provider_id" character varying NOT NULL,
        "operation" character varying NOT NULL,
        "state" character varying NOT NULL,
        "outcome" character varying,
        "error_code" character varying,
        "error_message" text,
        "amount" integer,
        "currency_code" character varying,
        "provider_data" jsonb,
        "request_id" character varying,
        "idempotency_key" character varying,
        "process" character varying NOT NULL,
        "lease_until" TIMESTAMP WITH TIME ZONE NOT NULL,
        "recovery_attempts" integer NOT NULL DEFAULT 0,
        "next_attempt_at" TIMESTAMP WITH TIME ZONE,
        "resolved_by" character varying,
        "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
        "answered_at" TIMESTAMP WITH TIME ZONE,
        "finished_at" TIMESTAMP WITH TIME ZONE,
        "latency_ms" integer,
        "attention_at" TIMESTAMP WITH TIME ZONE,
        CONSTRAINT "PK_payment_collection_attempt" PRIMARY KEY ("id")
      )`)
    await queryRunner.query(`
      CREATE INDEX IF NOT EXISTS "IDX_payment_collection_attempt_collection"
        ON "payment_collection_attempt" ("payment_collection_id", "created_at" DESC)`)
    // What the reconciler scans: only open rows, a handful at any time.
    await queryRunner.query(`
      CREATE INDEX IF NOT EXISTS "IDX_payment_collection_attempt_open"
        ON "payment_collection_attempt" ("lease_until")
        WHERE "state" IN ('started', 'answered', 'uncertain', 'needs_attention')`)
    // What a locked request checks: the calls still open on one collection.
    await queryRunner.query(`
      CREATE INDEX IF NOT EXISTS "IDX_payment_collection_attempt_open_collection"
        ON "payment_collection_attempt" ("payment_collection_id")
        WHERE "state" IN ('started', 'answered', 'uncertain', 'needs_attention')`)
    // What retention deletes: closed rows by age.
    await queryRunner.query(`
      CREATE INDEX IF NOT EXISTS "IDX_payment_collection_attempt_finished"
        ON "payment_collection_attempt" ("created_at")
        WHERE "state" NOT IN ('started', 'answered', 'uncertain', 'needs_attention')`)
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE IF EXISTS "payment_collection_attempt"`)
  }
}
