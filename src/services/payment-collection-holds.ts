import { Logger } from "@medusajs/medusa"
import { EntityManager } from "typeorm"
import { cancelCollection, collectionOfOrderEdit, heldPayments } from "../db/collection-payments"
import { CollectionRow, SessionRow } from "../db/collection-queries"
import { JournaledCalls } from "../journal/journaled-calls"
import { isAuthorized } from "../rules/session-plan"
import { PluginOptions, ResolvedPluginOptions, resolveOptions } from "../types/options"
import type PaymentCollectionJournalService from "./payment-collection-journal"

type InjectedDependencies = {
  manager: EntityManager
  logger: Logger
  paymentCollectionJournalService: PaymentCollectionJournalService
}

/**
 * Holds released: when the order edit a collection pays is declined or
 * canceled, what its collection holds at providers is given back at once
 * instead of when the provider lets it lapse (7 days for a card): its
 * authorized, uncaptured payments are canceled at their providers and marked
 * canceled, its other live sessions deleted there, the collection `canceled`.
 * The provider calls are staged in the transaction and made once it has
 * committed, journaled and retried until done (option `release_holds`).
 */
export default class PaymentCollectionHoldsService {
  static LIFE_TIME = "SINGLETON"

  protected readonly manager_: EntityManager
  protected readonly logger_: Logger
  protected readonly options_: ResolvedPluginOptions
  protected readonly journal_: PaymentCollectionJournalService

  constructor(container: InjectedDependencies, options?: PluginOptions) {
    this.manager_ = container.manager
    this.logger_ = container.logger
    this.options_ = resolveOptions(options)
    this.journal_ = container.paymentCollectionJournalService
  }

  /** The order edit was declined or canceled: its collection's holds go. Answers how many payments were released. */
  async releaseForOrderEdit(orderEditId: string): Promise<number> {
    const collectionId = this.options_.release_holds ? await collectionOfOrderEdit(this.manager_, orderEditId) : undefined
    if (!collectionId) {
      return 0
    }
    const released = await this.journal_.work(collectionId, {}, async (tx, collection, calls, { sessions }) => {
      if (collection.status === "canceled") {
        return 0
      }
      return await this.release(tx, collection, calls, sessions)
    })
    if (released) {
      this.logger_.info(
        `medusa-plugin-payment-collections: order edit ${orderEditId} ended: released ${released} authorization(s) of payment collection ${collectionId}`
      )
    }
    return released
  }

  /**
   * Inside a locked unit of work: stages the cancel of every held payment and
   * the delete of every other live session, and marks the collection canceled.
   */
  async release(tx: EntityManager, collection: CollectionRow, calls: JournaledCalls, sessions: SessionRow[]): Promise<number> {
    const payments = await heldPayments(tx, collection.id)
    const pending = sessions.filter((s) => !isAuthorized(s) && s.status !== "canceled")
    const origin = calls.origin
    const common = { collectionId: collection.id, currencyCode: collection.currency_code, requestId: origin.requestId }
    const staged = await this.journal_.store.stage(
      tx,
      [
        ...payments.map((p) => ({ ...common, providerId: p.provider_id, operation: "cancel" as const, amount: p.amount, providerData: p.data })),
        ...pending.map((s) => ({ ...common, sessionId: s.id, providerId: s.provider_id, operation: "delete" as const, amount: s.amount, providerData: s.data })),
      ],
      (payments.length + pending.length) * this.options_.provider_timeout_ms + this.journal_.store.leaseMs
    )
    calls.addStaged(staged)
    await cancelCollection(tx, collection.id, payments.map((p) => p.id))
    return payments.length
  }
}
