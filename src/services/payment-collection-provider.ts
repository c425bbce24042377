import { PaymentProviderService, TransactionBaseService } from "@medusajs/medusa"
import { MedusaError } from "medusa-core-utils"
import { EntityManager } from "typeorm"

export type PaymentCollectionProviderView = {
  id: string
  is_installed: boolean
  is_enabled: boolean
  /** The regions that offer this provider (core's region settings), by name. */
  regions: { id: string; name: string }[]
}

// One read for the list and for the answer to a switch, so both show the same.
const PROVIDER_VIEW = `
  SELECT pp.id, pp.is_installed, COALESCE(s.is_enabled, true) AS is_enabled,
         COALESCE((
           SELECT json_agg(json_build_object('id', r.id, 'name', r.name) ORDER BY r.name, r.id)
             FROM region_payment_providers rpp
             JOIN region r ON r.id = rpp.region_id AND r.deleted_at IS NULL
            WHERE rpp.provider_id = pp.id), '[]') AS regions
    FROM payment_provider pp
    LEFT JOIN payment_collection_provider_setting s ON s.provider_id = pp.id
   WHERE pp.is_installed`

type InjectedDependencies = {
  manager: EntityManager
  paymentProviderService: PaymentProviderService
}

/**
 * The admin switch for which installed providers payment collections may use.
 * Read from the database on every store request (no cache to go stale across
 * server instances).
 */
export default class PaymentCollectionProviderService extends TransactionBaseService {
  protected readonly paymentProviderService_: PaymentProviderService

  constructor(container: InjectedDependencies, options?: Record<string, unknown>) {
    super(container, options)
    this.paymentProviderService_ = container.paymentProviderService
  }

  async list(): Promise<PaymentCollectionProviderView[]> {
    return await this.activeManager_.query(`${PROVIDER_VIEW} ORDER BY pp.id`)
  }

  async setEnabled(
    providerId: string,
    isEnabled: boolean
  ): Promise<PaymentCollectionProviderView> {
    return await this.atomicPhase_(async (tx) => {
      const [provider]: { id: string }[] = await tx.query(
        `SELECT id FROM payment_provider WHERE id = $1 AND is_installed`,
        [providerId]
      )
      if (!provider) {
        throw new MedusaError(
          MedusaError.Types.NOT_FOUND,
          `Payment provider ${providerId} is not installed`
        )
      }
      await tx.query(
        `INSERT INTO payment_collection_provider_setting (provider_id, is_enabled)
         VALUES ($1, $2)
         ON CONFLICT (provider_id) DO UPDATE
            SET is_enabled = EXCLUDED.is_enabled, updated_at = now()`,
        [providerId, isEnabled]
      )
      const [view]: PaymentCollectionProviderView[] = await tx.query(
        `${PROVIDER_VIEW} AND pp.id = $1`,
        [providerId]
      )
      return view
    })
  }
}
