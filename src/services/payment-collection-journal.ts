import { EventBusService, PaymentProviderService } from "@medusajs/medusa"
import { EntityManager } from "typeorm"
import { createJournalPool, lazyJournalPool } from "../db/journal-pool"
import { AttemptStore } from "../journal/attempt-store"
import { listAttempts } from "../journal/attempt-log"
import { AttemptPage } from "../journal/attempt-types"
import { AuthorizationRecorder } from "../journal/authorization-record"
import { CollectionWork, RequestInfo, workOnCollection } from "../journal/collection-work"
import { Finisher } from "../journal/finisher"
import { HeldAnswers } from "../journal/held-answers"
import { Reconciler, SweepSummary } from "../journal/reconciler"
import { SessionChanges } from "../journal/session-changes"
import { ProviderClient } from "../providers/provider-client"
import { PluginOptions, ResolvedPluginOptions, resolveOptions } from "../types/options"
import PaymentCollectionAuthorizationService from "./payment-collection-authorization"
import type PaymentCollectionStoreService from "./payment-collection-store"

type Logger = { info: (m: string) => void; warn: (m: string) => void; error: (m: string) => void }

type InjectedDependencies = {
  manager: EntityManager
  paymentProviderService: PaymentProviderService
  paymentCollectionStoreService: PaymentCollectionStoreService
  eventBusService: EventBusService
  logger: Logger
}

/**
 * The attempt journal as the container exposes it (see src/journal/): a
 * request's journaled work on a collection, the reconciler's sweep and the
 * journal's retention, and the attempt log the admin reads. One per process:
 * it owns the journal's connections and the answers this process could not
 * journal yet.
 */
export default class PaymentCollectionJournalService {
  static LIFE_TIME = "SINGLETON"

  readonly store: AttemptStore
  readonly client: ProviderClient
  readonly recorder: AuthorizationRecorder
  readonly sessionChanges: SessionChanges
  protected readonly manager_: EntityManager
  protected readonly options_: ResolvedPluginOptions
  protected readonly logger_: Logger
  protected readonly pool_: ReturnType<typeof lazyJournalPool>
  protected readonly heldAnswers_ = new HeldAnswers()
  protected readonly finisher_: Finisher
  protected readonly reconciler_: Reconciler
  protected readonly collections_: PaymentCollectionStoreService

  constructor(container: InjectedDependencies, options?: PluginOptions) {
    this.manager_ = container.manager
    this.logger_ = container.logger
    this.options_ = resolveOptions(options)
    this.collections_ = container.paymentCollectionStoreService
    this.pool_ = lazyJournalPool(() =>
      createJournalPool(this.manager_, this.options_.lock_timeout_ms, (err) =>
        this.logger_.warn(`medusa-plugin-payment-collections: attempt journal connection failed: ${err.message}`)
      )
    )
    this.store = new AttemptStore(this.pool_, this.options_)
    this.client = new ProviderClient(container.paymentProviderService, this.options_.provider_timeout_ms)
    const eventBus = container.eventBusService
    this.recorder = new AuthorizationRecorder(this.client, this.collections_.decoder, async (tx, collectionId) => {
      await eventBus
        .withTransaction(tx)
        .emit(PaymentCollectionAuthorizationService.Events.PAYMENT_AUTHORIZED, { id: collectionId })
    })
    this.sessionChanges = new SessionChanges(this.client, this.store, this.options_)
    const { lock } = this.collections_
    this.finisher_ = new Finisher({
      manager: this.manager_,
      store: this.store,
      heldAnswers: this.heldAnswers_,
      client: this.client,
      recorder: this.recorder,
      lock,
      logger: this.logger_,
    })
    this.reconciler_ = new Reconciler(this.store, this.heldAnswers_, this.finisher_, lock)
  }

  /** A request's work on one collection: locked, its provider calls journaled, finished afterwards. */
  async work<T>(collectionId: string, request: RequestInfo, work: CollectionWork<T>): Promise<T> {
    const deps = {
      options: this.options_,
      lock: this.collections_.lock,
      store: this.store,
      heldAnswers: this.heldAnswers_,
      finisher: this.finisher_,
      logger: this.logger_,
    }
    return await workOnCollection(deps, collectionId, request, work)
  }

  /** One reconciler pass over the journal. */
  async sweep(): Promise<SweepSummary> {
    return await this.reconciler_.sweep()
  }

  /** Retention: finished rows older than `attempt_retention_days`; how many went. */
  async prune(): Promise<number> {
    return await this.reconciler_.prune()
  }

  async listForCollection(collectionId: string, page: { limit: number; offset: number }): Promise<AttemptPage> {
    return await listAttempts(this.manager_, collectionId, page)
  }

  /** Closes the journal's connections (backend shutdown). */
  async close(): Promise<void> {
    await this.pool_.end()
  }
}
