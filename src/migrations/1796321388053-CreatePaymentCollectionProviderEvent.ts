import { MigrationInterface, QueryRunner } from "typeorm"

/**
 * The provider events the plugin has acted on (a Stripe webhook's event id),
 * so an event delivered twice — providers deliver at least once — is acted on
 * once. Rows go with the attempt journal's retention.
 */
export class CreatePaymentCollectionProviderEvent1796321388053 implements MigrationInterface {
  name = "CreatePaymentCollectionProviderEvent1796321388053"

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE IF NOT EXISTS "payment_collection_provider_event" (
        "event_id" character varying NOT NULL,
        "provider_id" character varying NOT NULL,
        "payment_collection_id" character varying NOT NULL,
        "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
        CONSTRAINT "PK_payment_collection_provider_event" PRIMARY KEY ("event_id")
      )`)
    await queryRunner.query(`
      CREATE INDEX IF NOT EXISTS "IDX_payment_collection_provider_event_created"
        ON "payment_collection_provider_event" ("created_at")`)
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE IF EXISTS "payment_collection_provider_event"`)
  }
}
