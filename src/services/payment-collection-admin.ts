import { EventBusService } from "@medusajs/medusa"
import { MedusaError } from "medusa-core-utils"
import { EntityManager } from "typeorm"
import { deleteCollection, markCollectionAuthorized, orderEditsPaidBy } from "../db/collection-writes"
import { CollectionRow } from "../db/collection-queries"
import { isMedusaError } from "../lib/errors"
import PaymentCollectionAuthorizationService from "./payment-collection-authorization"
import type PaymentCollectionJournalService from "./payment-collection-journal"
import type PaymentCollectionStoreService from "./payment-collection-store"

type InjectedDependencies = {
  manager: EntityManager
  eventBusService: EventBusService
  paymentCollectionJournalService: PaymentCollectionJournalService
  paymentCollectionStoreService: PaymentCollectionStoreService
}

/** Core's only statuses from which a collection may be deleted. */
const DELETABLE_STATUSES = ["canceled", "not_paid"]

export type DeletedCollection = { id: string; deleted: true; object: "payment_collection" }

/**
 * Core's admin writers of a payment collection, served under the collection's
 * lock like the store's: `POST /admin/payment-collections/:id/authorize` and
 * `DELETE /admin/payment-collections/:id`, with core's contracts. Core reads
 * and writes the collection without the lock, so it can delete a collection a
 * store request is authorizing, or be undone by a late authorization.
 */
export default class PaymentCollectionAdminService {
  static LIFE_TIME = "SINGLETON"
  static readonly Events = { DELETED: "payment-collection.deleted" }

  protected readonly eventBus_: EventBusService
  protected readonly journal_: PaymentCollectionJournalService
  protected readonly collections_: PaymentCollectionStoreService

  constructor(container: InjectedDependencies) {
    this.eventBus_ = container.eventBusService
    this.journal_ = container.paymentCollectionJournalService
    this.collections_ = container.paymentCollectionStoreService
  }

  /**
   * Core's markAsAuthorized: the collection is `authorized` for its whole
   * amount, whatever its sessions say (an admin took the payment another way).
   * An authorization recorded later only ever raises the status, so this
   * stands. Answers the collection's columns, as core does.
   */
  async markAsAuthorized(collectionId: string): Promise<{ payment_collection: Record<string, unknown> }> {
    return await this.journal_.work(collectionId, {}, async (tx) => {
      const row = await markCollectionAuthorized(tx, collectionId)
      const payment_collection = this.collections_.decoder.inEntityOrder(tx, "payment_collection", row)
      await this.eventBus_
        .withTransaction(tx)
        .emit(PaymentCollectionAuthorizationService.Events.PAYMENT_AUTHORIZED, payment_collection)
      return { payment_collection }
    })
  }

  /**
   * Core's delete, from `not_paid` or `canceled` only, and of a collection
   * that no order edit names (core answers a foreign key violation as 404
   * "null"). Its sessions' providers are asked first (nothing the shopper
   * confirmed is deleted), its sessions deleted at their providers once the
   * deletion is committed. Deleting a collection that does not exist answers
   * the same as deleting it, as core does.
   */
  async delete(collectionId: string): Promise<DeletedCollection> {
    const deleted: DeletedCollection = { id: collectionId, deleted: true, object: "payment_collection" }
    try {
      return await this.journal_.work(collectionId, {}, async (tx, collection, calls, { sessions }) => {
        this.assertDeletable(collection)
        const editIds = await orderEditsPaidBy(tx, collectionId)
        if (editIds.length) {
          throw new MedusaError(
            MedusaError.Types.NOT_ALLOWED,
            `Payment collection ${collectionId} pays order edit ${editIds.join(", ")} and cannot be deleted`
          )
        }
        const changes = this.journal_.sessionChanges
        const confirmed = await changes.askBeforeRemoving(tx, collection, calls, sessions)
        if (confirmed) {
          return confirmed
        }
        await changes.write(tx, collection, calls, { created: [], updated: [], removed: sessions })
        await deleteCollection(tx, collectionId)
        await this.eventBus_.withTransaction(tx).emit(PaymentCollectionAdminService.Events.DELETED, collection)
        return deleted
      })
    } catch (err) {
      if (isMedusaError(err, MedusaError.Types.NOT_FOUND) && /^Payment collection with id/.test(err.message)) {
        return deleted
      }
      throw err
    }
  }

  protected assertDeletable(collection: CollectionRow): void {
    if (!DELETABLE_STATUSES.includes(collection.status)) {
      throw new MedusaError(
        MedusaError.Types.NOT_ALLOWED,
        `Cannot delete payment collection with status ${collection.status}`
      )
    }
  }
}
