import { MigrationInterface, QueryRunner } from "typeorm"

/**
 * When the reconciler next asks a provider about a session still pending
 * (the status sync for missed events), and how often it asked: its backoff.
 * No foreign key: a row outliving its session is harmless and removed with it
 * by the sync itself.
 */
export class CreatePaymentCollectionStatusCheck1796321388054 implements MigrationInterface {
  name = "CreatePaymentCollectionStatusCheck1796321388054"

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE IF NOT EXISTS "payment_collection_status_check" (
        "payment_session_id" character varying NOT NULL,
        "checks" integer NOT NULL DEFAULT 0,
        "next_check_at" TIMESTAMP WITH TIME ZONE NOT NULL,
        CONSTRAINT "PK_payment_collection_status_check" PRIMARY KEY ("payment_session_id")
      )`)
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE IF EXISTS "payment_collection_status_check"`)
  }
}
