import { CustomerService, EventBusService, PaymentProviderService } from "@medusajs/medusa"
import { MedusaError } from "medusa-core-utils"
import { EntityManager } from "typeorm"
import { createJournalPool, lazyJournalPool } from "../db/journal-pool"
import { AttemptStore } from "../journal/attempt-store"
import { AttemptAcrossCollections, listAttempts, listAttemptsInState, resolveAttempt } from "../journal/attempt-log"
import { AttemptPage, AttemptRow } from "../journal/attempt-types"
import { AuthorizationRecorder } from "../journal/authorization-record"
import { CollectionWork, CommittedFailure, Decision, RequestInfo, answerWith, workOnCollection } from "../journal/collection-work"
import { Finisher } from "../journal/finisher"
import { HeldAnswers } from "../journal/held-answers"
import { Reconciler, SweepSummary } from "../journal/reconciler"
import { ProviderNews } from "../journal/provider-news"
import { SessionChanges } from "../journal/session-changes"
import { ProviderClient } from "../providers/provider-client"
import { PluginOptions, ResolvedPluginOptions, resolveOptions } from "../types/options"
import PaymentCollectionAuthorizationService from "./payment-collection-authorization"
import type PaymentCollectionIdempotencyService from "./payment-collection-idempotency"
import type PaymentCollectionStoreService from "./payment-collection-store"

type Logger = { info: (m: string) => void; warn: (m: string) => void; error: (m: string) => void }

type InjectedDependencies = {
  manager: EntityManager
  paymentProviderService: PaymentProviderService
  paymentCollectionStoreService: PaymentCollectionStoreService
  eventBusService: EventBusService
  /** The event bus module core's EventBusService stages events for (local or Redis). */
  eventBusModuleService: EventBusModule
  customerService: CustomerService
  paymentCollectionIdempotencyService: PaymentCollectionIdempotencyService
  logger: Logger
}

type EventBusModule = { emit(eventName: string, data: unknown): Promise<unknown> }

/** A result that is its own answer; a CommittedFailure ends the request with its error. */
const asIs = answerWith(<T>(value: T) => value)

/**
 * The attempt journal as the container exposes it (see src/journal/): a
 * request's journaled work on a collection, the reconciler's sweep and the
 * journal's retention, and the attempt log the admin reads. One per process:
 * it owns the journal's connections and the answers this process could not
 * journal yet.
 */
export default class PaymentCollectionJournalService {
  static LIFE_TIME = "SINGLETON"
  static readonly Events = {
    /** A provider call the plugin cannot settle alone (see the attempt log); sent once per call. */
    ATTEMPT_NEEDS_ATTENTION: "payment-collection.attempt_needs_attention",
  }

  readonly store: AttemptStore
  readonly client: ProviderClient
  readonly recorder: AuthorizationRecorder
  readonly sessionChanges: SessionChanges
  readonly providerNews: ProviderNews
  protected readonly manager_: EntityManager
  protected readonly options_: ResolvedPluginOptions
  protected readonly logger_: Logger
  protected readonly pool_: ReturnType<typeof lazyJournalPool>
  protected readonly heldAnswers_ = new HeldAnswers()
  protected readonly finisher_: Finisher
  protected readonly reconciler_: Reconciler
  protected readonly collections_: PaymentCollectionStoreService
  protected readonly idempotency_: PaymentCollectionIdempotencyService

  constructor(container: InjectedDependencies, options?: PluginOptions) {
    this.manager_ = container.manager
    this.logger_ = container.logger
    this.options_ = resolveOptions(options)
    this.collections_ = container.paymentCollectionStoreService
    this.idempotency_ = container.paymentCollectionIdempotencyService
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
    const customers = container.customerService
    this.sessionChanges = new SessionChanges(
      this.client,
      this.store,
      this.recorder,
      async (tx, customerId, metadata) => {
        await customers.withTransaction(tx).update(customerId, { metadata })
      },
      this.options_
    )
    this.providerNews = new ProviderNews(this.client, this.store, this.recorder)
    const { lock } = this.collections_
    this.finisher_ = new Finisher({
      manager: this.manager_,
      store: this.store,
      heldAnswers: this.heldAnswers_,
      client: this.client,
      recorder: this.recorder,
      lock,
      options: this.options_,
      logger: this.logger_,
      announce: (row, reason) => this.announce(container.eventBusModuleService, row, reason),
    })
    this.reconciler_ = new Reconciler(this.store, this.heldAnswers_, this.finisher_, lock)
  }

  /**
   * A request's work on one collection: locked, its provider calls journaled,
   * finished afterwards. `decide` turns the result into the request's answer
   * inside the transaction, where an Idempotency-Key's answer is stored with
   * the rows it answers.
   */
  async work<T, B = T>(
    collectionId: string,
    request: RequestInfo,
    work: CollectionWork<T>,
    decide: (result: T | CommittedFailure) => Decision<B> = asIs as never
  ): Promise<B> {
    const deps = {
      options: this.options_,
      lock: this.collections_.lock,
      store: this.store,
      heldAnswers: this.heldAnswers_,
      finisher: this.finisher_,
      logger: this.logger_,
    }
    const claim = request.idempotencyClaim
    const save = claim
      ? (tx: EntityManager, answer: { status: number; body: unknown } | undefined) => this.idempotency_.settleIn(tx, claim.keyId, answer)
      : undefined
    return await workOnCollection(deps, collectionId, request, work, { decide, save })
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

  /** Attempts of every collection in one state (`needs_attention`: what a person must look at). */
  async listInState(state: string, page: { limit: number; offset: number }) {
    return await listAttemptsInState(this.manager_, state, page)
  }

  /** An admin closes an open attempt, having settled at the provider what the plugin could not. */
  async resolve(attemptId: string, adminId: string, note?: string): Promise<AttemptAcrossCollections> {
    const attempt = await resolveAttempt(this.manager_, attemptId, `admin:${adminId}`, note)
    if (!attempt) {
      throw new MedusaError(MedusaError.Types.NOT_FOUND, `Payment collection attempt with id ${attemptId} was not found`)
    }
    return attempt
  }

  /**
   * Straight to the event bus module, not staged through core's
   * EventBusService: every backend process's enqueuer hands the staged jobs it
   * lists to its own bus before one of them deletes them, so with several
   * processes a staged event can be delivered once per process. The journal
   * says "first" once across processes (`flagForAttention`); emitting directly
   * keeps the announcement once.
   */
  private async announce(eventBus: EventBusModule, row: AttemptRow, reason: string): Promise<void> {
    await eventBus.emit(PaymentCollectionJournalService.Events.ATTEMPT_NEEDS_ATTENTION, {
      id: row.id,
      payment_collection_id: row.payment_collection_id,
      payment_session_id: row.payment_session_id,
      provider_id: row.provider_id,
      operation: row.operation,
      reason,
    })
  }

  /** Closes the journal's connections (backend shutdown). */
  async close(): Promise<void> {
    await this.pool_.end()
  }
}
