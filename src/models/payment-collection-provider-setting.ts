import { Column, CreateDateColumn, Entity, PrimaryColumn, UpdateDateColumn } from "typeorm"

/**
 * The admin's switch, per installed payment provider, for whether payment
 * collections may use it. No row means enabled. It narrows the region's
 * provider list; it never widens it.
 */
@Entity({ name: "payment_collection_provider_setting" })
export class PaymentCollectionProviderSetting {
  @PrimaryColumn({ type: "varchar" })
  provider_id: string

  @Column({ type: "boolean", default: true })
  is_enabled: boolean

  @CreateDateColumn({ type: "timestamptz" })
  created_at: Date

  @UpdateDateColumn({ type: "timestamptz" })
  updated_at: Date
}
