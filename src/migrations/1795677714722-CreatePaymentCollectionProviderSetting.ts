import { MigrationInterface, QueryRunner } from "typeorm"

export class CreatePaymentCollectionProviderSetting1795677714722 implements MigrationInterface {
  name = "CreatePaymentCollectionProviderSetting1795677714722"

  public async up(queryRunner: QueryRunner): Promise<void> {
    // IF NOT EXISTS: running the plugin's migrations again is a no-op.
    await queryRunner.query(`
      CREATE TABLE IF NOT EXISTS "payment_collection_provider_setting" (
        "provider_id" character varying NOT NULL,
        "is_enabled" boolean NOT NULL DEFAULT true,
        "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
        "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
        CONSTRAINT "PK_payment_collection_provider_setting" PRIMARY KEY ("provider_id"),
        CONSTRAINT "FK_payment_collection_provider_setting_provider_id"
          FOREIGN KEY ("provider_id") REFERENCES "payment_provider"("id") ON DELETE CASCADE
      )`)
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE IF EXISTS "payment_collection_provider_setting"`)
  }
}
