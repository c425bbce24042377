import {
  CustomerService,
  EventBusService,
  PaymentCollection,
  PaymentProviderService,
  PaymentSession,
  TransactionBaseService,
} from "@medusajs/medusa"
import { MedusaError } from "medusa-core-utils"
import { EntityManager, Repository } from "typeorm"
import {
  PG_LOCK_NOT_AVAILABLE,
  conflictError,
  isMedusaError,
  isRetryableConflict,
  pgCode,
} from "../lib/errors"
import { KeyedQueue } from "../lib/keyed-queue"
import { ProviderGateway } from "../lib/provider-gateway"
import {
  RequestedSession,
  SessionPlan,
  isAuthorized,
  planSessions,
  statusForAuthorizedAmount,
} from "../lib/session-plan"
import {
  PluginOptions,
  ResolvedPluginOptions,
  resolveOptions,
} from "../types/options"

type InjectedDependencies = {
  manager: EntityManager
  paymentProviderService: PaymentProviderService
  paymentCollectionRepository: Repository<PaymentCollection>
  paymentSessionRepository: Repository<PaymentSession>
  customerService: CustomerService
  eventBusService: EventBusService
  logger: { warn: (m: string) => void; error: (m: string) => void }
}

/** The row the lock is taken on, with what every decision needs. */
type LockedCollection = {
  id: string
  status: string
  amount: number
  authorized_amount: number | null
  region_id: string
  currency_code: string
}

type Work<T> = (
  tx: EntityManager,
  collection: LockedCollection,
  provider: ProviderGateway
) => Promise<T>

const SESSION_STATUSES_ALLOWED = ["not_paid", "awaiting"]
const BATCH_STATUSES_ALLOWED = ["not_paid", "awaiting", "partially_authorized"]

/** One per process: see KeyedQueue for why it exists next to the row lock. */
const collectionQueue = new KeyedQueue()

export default class PaymentCollectionSessionService extends TransactionBaseService {
  static readonly Events = {
    PAYMENT_AUTHORIZED: "payment-collection.payment_authorized",
  }

  protected readonly options_: ResolvedPluginOptions
  protected readonly paymentProviderService_: PaymentProviderService
  protected readonly paymentCollectionRepository_: Repository<PaymentCollection>
  protected readonly paymentSessionRepository_: Repository<PaymentSession>
  protected readonly customerService_: CustomerService
  protected readonly eventBusService_: EventBusService
  protected readonly logger_: InjectedDependencies["logger"]

  constructor(container: InjectedDependencies, options?: PluginOptions) {
    // eslint-disable-next-line prefer-rest-params
    super(container, options as Record<string, unknown>)
    this.options_ = resolveOptions(options)
    this.paymentProviderService_ = container.paymentProviderService
    this.paymentCollectionRepository_ = container.paymentCollectionRepository
    this.paymentSessionRepository_ = container.paymentSessionRepository
    this.customerService_ = container.customerService
    this.eventBusService_ = container.eventBusService
    this.logger_ = container.logger
  }

  /**
   * "Create a Payment Session": afterwards the collection has exactly one
   * session, for `providerId`, for its full amount. The same provider again
   * keeps (or updates) that session; another provider replaces it.
   */
  async setSession(
    collectionId: string,
    providerId: string,
    customerId?: string
  ): Promise<PaymentCollection> {
    return await this.withLockedCollection(
      collectionId,
      async (tx, collection, provider) => {
        this.assertStatus(collection, SESSION_STATUSES_ALLOWED)
        const existing = await this.listSessions(tx, collection.id)
        const sameProvider = existing.find((s) => s.provider_id === providerId)
        await this.applyPlan(
          tx,
          collection,
          provider,
          existing,
          [
            {
              provider_id: providerId,
              amount: collection.amount,
              session_id: sameProvider?.id,
            },
          ],
          customerId
        )
        return await this.loadResponse(tx, collection.id)
      }
    )
  }

  /** "Manage Payment Sessions": the collection holds exactly `requested`. */
  async setSessionsBatch(
    collectionId: string,
    requested: RequestedSession[],
    customerId?: string
  ): Promise<PaymentCollection> {
    return await this.withLockedCollection(
      collectionId,
      async (tx, collection, provider) => {
        this.assertStatus(collection, BATCH_STATUSES_ALLOWED)
        const existing = await this.listSessions(tx, collection.id)
        await this.applyPlan(
          tx,
          collection,
          provider,
          existing,
          requested,
          customerId
        )
        return await this.loadResponse(tx, collection.id)
      }
    )
  }

  /**
   * Authorizes the listed sessions that are not authorized yet. A session that
   * is already authorized is never sent to its provider again. Sessions whose
   * provider refused are returned in `refused`; the rest is committed.
   */
  async authorizeSessions(
    collectionId: string,
    sessionIds: string[],
    context: Record<string, unknown> = {}
  ): Promise<{ collection: PaymentCollection; refused: string[] }> {
    const outcome = await this.withLockedCollection(
      collectionId,
      async (tx, collection, provider) => {
        const sessions = await this.listSessions(tx, collection.id)
        const known = new Set(sessions.map((s) => s.id))
        const foreign = sessionIds.filter((id) => !known.has(id))
        if (foreign.length) {
          throw new MedusaError(
            MedusaError.Types.NOT_FOUND,
            `Payment session ${foreign.join(", ")} does not belong to payment collection ${collection.id}`
          )
        }
        const refused = await this.authorizeInLock(
          tx,
          collection,
          provider,
          sessions,
          new Set(sessionIds),
          context
        )
        return {
          collection: await this.loadResponse(tx, collection.id),
          refused,
        }
      }
    )
    return outcome
  }

  /** "Refresh a Payment Session": a new provider session replaces the old one. */
  async refreshSession(
    collectionId: string,
    sessionId: string,
    customerId?: string
  ): Promise<PaymentSession> {
    return await this.withLockedCollection(
      collectionId,
      async (tx, collection, provider) => {
        this.assertStatus(collection, BATCH_STATUSES_ALLOWED)
        const sessions = await this.listSessions(tx, collection.id)
        const session = sessions.find((s) => s.id === sessionId)
        if (!session) {
          throw new MedusaError(
            MedusaError.Types.NOT_FOUND,
            `Payment session ${sessionId} does not belong to payment collection ${collection.id}`
          )
        }
        if (isAuthorized(session)) {
          throw new MedusaError(
            MedusaError.Types.NOT_ALLOWED,
            `Payment session ${sessionId} is authorized and cannot be refreshed`
          )
        }
        if (!(await this.usableProviders(tx, collection)).has(session.provider_id)) {
          throw new MedusaError(
            MedusaError.Types.INVALID_DATA,
            `Payment provider ${session.provider_id} is not available for this payment collection: it must be installed, enabled on the region and not switched off for payment collections`
          )
        }
        const customer = await this.retrieveCustomer(tx, customerId)
        const created = await this.initiate(
          tx,
          collection,
          provider,
          { provider_id: session.provider_id, amount: session.amount ?? collection.amount },
          customer
        )
        await this.removeSessions(tx, provider, [session])
        return created
      }
    )
  }

  /**
   * Serializes all work on one payment collection, across processes.
   *
   * Lock order, the same on every path: (1) this process's queue for the
   * collection, (2) the `payment_collection` row, FOR UPDATE, before anything
   * is read for a decision, (3) the collection's sessions, payments and join
   * rows. Provider calls happen while (2) is held, so two requests can never
   * both decide to initiate or authorize; what a provider did is undone there
   * when the transaction does not commit.
   */
  protected async withLockedCollection<T>(
    collectionId: string,
    work: Work<T>
  ): Promise<T> {
    const lockTimeout = this.options_.lock_timeout_ms
    return await collectionQueue.run(
      collectionId,
      lockTimeout,
      async () => {
        for (let attempt = 1; ; attempt++) {
          const provider = new ProviderGateway(
            this.paymentProviderService_,
            this.manager_,
            this.options_.provider_timeout_ms,
            this.logger_
          )
          try {
            return await this.manager_.transaction(
              "READ COMMITTED",
              async (tx) => {
                await tx.query(`SET LOCAL lock_timeout = ${lockTimeout}`)
                const collection = await this.lockCollection(tx, collectionId)
                return await work(tx, collection, provider)
              }
            )
          } catch (err) {
            const undoable = provider.hasSideEffects
            await provider.undo()
            // A retry is safe only while no provider was involved.
            if (isRetryableConflict(err) && !undoable && attempt < 3) {
              continue
            }
            throw this.translateDatabaseError(err)
          }
        }
      },
      () =>
        conflictError(
          `Payment collection ${collectionId} is busy with another request; retry later`
        )
    )
  }

  protected translateDatabaseError(err: unknown): unknown {
    const code = pgCode(err)
    if (code === PG_LOCK_NOT_AVAILABLE || isRetryableConflict(err)) {
      return conflictError(
        "The payment collection is busy with another request; retry later"
      )
    }
    return err
  }

  protected async lockCollection(
    tx: EntityManager,
    collectionId: string
  ): Promise<LockedCollection> {
    const rows: LockedCollection[] = await tx.query(
      `SELECT id, status, amount, authorized_amount, region_id, currency_code
         FROM payment_collection
        WHERE id = $1 AND deleted_at IS NULL
          FOR UPDATE`,
      [collectionId]
    )
    if (!rows.length) {
      throw new MedusaError(
        MedusaError.Types.NOT_FOUND,
        `Payment collection with id ${collectionId} was not found`
      )
    }
    return rows[0]
  }

  protected assertStatus(collection: LockedCollection, allowed: string[]): void {
    if (!allowed.includes(collection.status)) {
      throw new MedusaError(
        MedusaError.Types.NOT_ALLOWED,
        `Cannot change the payment sessions of a payment collection with status ${collection.status}`
      )
    }
  }

  protected async listSessions(
    tx: EntityManager,
    collectionId: string
  ): Promise<PaymentSession[]> {
    return await tx
      .withRepository(this.paymentSessionRepository_)
      .createQueryBuilder("ps")
      .innerJoin(
        "payment_collection_sessions",
        "pcs",
        "pcs.payment_session_id = ps.id"
      )
      .where("pcs.payment_collection_id = :collectionId", { collectionId })
      .orderBy("ps.created_at", "ASC")
      .getMany()
  }

  /**
   * Providers a collection may use right now: enabled on its region and in the
   * plugin's admin switch (both read on every request, so an admin's change
   * applies at once on every instance) and installed in this backend.
   */
  protected async usableProviders(
    tx: EntityManager,
    collection: LockedCollection
  ): Promise<Set<string>> {
    const rows: { provider_id: string }[] = await tx.query(
      `SELECT rpp.provider_id
         FROM region_payment_providers rpp
         LEFT JOIN payment_collection_provider_setting s ON s.provider_id = rpp.provider_id
        WHERE rpp.region_id = $1 AND COALESCE(s.is_enabled, true)`,
      [collection.region_id]
    )
    const gateway = new ProviderGateway(
      this.paymentProviderService_,
      this.manager_,
      this.options_.provider_timeout_ms,
      this.logger_
    )
    return new Set(
      rows.map((r) => r.provider_id).filter((id) => gateway.isInstalled(id))
    )
  }

  protected async applyPlan(
    tx: EntityManager,
    collection: LockedCollection,
    provider: ProviderGateway,
    existing: PaymentSession[],
    requested: RequestedSession[],
    customerId?: string
  ): Promise<void> {
    const plan: SessionPlan<PaymentSession> = planSessions({
      collectionAmount: collection.amount,
      existing,
      requested,
      usableProviders: await this.usableProviders(tx, collection),
    })

    const needsProvider = plan.create.length || plan.update.length
    const customer = needsProvider
      ? await this.retrieveCustomer(tx, customerId)
      : null

    // New sessions first: if one is refused, nothing was removed yet.
    for (const wanted of plan.create) {
      await this.initiate(tx, collection, provider, wanted, customer)
    }
    for (const { session, amount } of plan.update) {
      const input = this.sessionInput(
        collection,
        { provider_id: session.provider_id, amount },
        customer
      )
      await provider.call(session.provider_id, "update the payment", () =>
        this.paymentProviderService_
          .withTransaction(tx)
          .updateSession(session, input)
      )
    }
    await this.removeSessions(tx, provider, plan.remove)
  }

  protected async initiate(
    tx: EntityManager,
    collection: LockedCollection,
    provider: ProviderGateway,
    wanted: RequestedSession,
    customer: CustomerLike | null
  ): Promise<PaymentSession> {
    const input = this.sessionInput(collection, wanted, customer)
    const session = await provider.call(
      wanted.provider_id,
      "initiate the payment",
      () => this.paymentProviderService_.withTransaction(tx).createSession(input)
    )
    provider.recordInitiated(session)
    await tx.query(
      `INSERT INTO payment_collection_sessions (payment_collection_id, payment_session_id)
       VALUES ($1, $2)`,
      [collection.id, session.id]
    )
    return session
  }

  /**
   * Deletes sessions at their provider, then their rows (the join rows go with
   * them, ON DELETE CASCADE). Provider first: a provider that refuses leaves
   * the session intact, never a live provider payment without its row.
   */
  protected async removeSessions(
    tx: EntityManager,
    provider: ProviderGateway,
    sessions: PaymentSession[]
  ): Promise<void> {
    for (const session of sessions) {
      await provider.call(session.provider_id, "delete the payment", () =>
        this.paymentProviderService_.withTransaction(tx).deleteSession(session)
      )
    }
  }

  protected async authorizeInLock(
    tx: EntityManager,
    collection: LockedCollection,
    provider: ProviderGateway,
    sessions: PaymentSession[],
    requested: ReadonlySet<string>,
    context: Record<string, unknown>
  ): Promise<string[]> {
    if (collection.status === "canceled") {
      throw new MedusaError(
        MedusaError.Types.NOT_ALLOWED,
        `Cannot authorize a payment collection with status ${collection.status}`
      )
    }
    if (
      collection.status === "authorized" &&
      collection.authorized_amount === collection.amount
    ) {
      return []
    }
    if (collection.amount <= 0) {
      await this.saveCollectionStatus(tx, collection.id, "authorized", 0)
      return []
    }
    if (!sessions.length) {
      throw new MedusaError(
        MedusaError.Types.NOT_ALLOWED,
        "You cannot complete a Payment Collection without a payment session."
      )
    }

    const providerTx = this.paymentProviderService_.withTransaction(tx)
    const refused: string[] = []
    let authorizedAmount = 0
    let changed = false

    for (const session of sessions) {
      if (isAuthorized(session)) {
        authorizedAmount += session.amount ?? 0
        continue
      }
      if (!requested.has(session.id)) {
        continue
      }
      changed = true
      let result: PaymentSession | undefined
      try {
        result = await provider.call(
          session.provider_id,
          "authorize the payment",
          () => providerTx.authorizePayment(session, context)
        )
      } catch (err) {
        if (!isMedusaError(err, MedusaError.Types.INVALID_DATA)) {
          throw err
        }
        // The provider refused: remember it on the session and go on, so the
        // shopper can change the sessions and try again.
        refused.push(session.id)
        await tx.query(
          `UPDATE payment_session SET status = 'error', updated_at = now() WHERE id = $1`,
          [session.id]
        )
        continue
      }
      if (result?.status !== "authorized") {
        continue
      }
      provider.recordAuthorized(result)
      authorizedAmount += session.amount ?? 0
      const payment = await provider.call(
        session.provider_id,
        "retrieve the payment",
        () =>
          providerTx.createPayment({
            amount: session.amount ?? 0,
            currency_code: collection.currency_code,
            provider_id: session.provider_id,
            resource_id: collection.id,
            payment_session: result!,
          })
      )
      await tx.query(
        `INSERT INTO payment_collection_payments (payment_collection_id, payment_id)
         VALUES ($1, $2)`,
        [collection.id, payment.id]
      )
    }

    const status = statusForAuthorizedAmount(authorizedAmount, collection.amount)
    if (
      changed ||
      status !== collection.status ||
      authorizedAmount !== collection.authorized_amount
    ) {
      await this.saveCollectionStatus(tx, collection.id, status, authorizedAmount)
      await this.eventBusService_
        .withTransaction(tx)
        .emit(PaymentCollectionSessionService.Events.PAYMENT_AUTHORIZED, {
          id: collection.id,
        })
    }
    return refused
  }

  protected async saveCollectionStatus(
    tx: EntityManager,
    collectionId: string,
    status: string,
    authorizedAmount: number
  ): Promise<void> {
    await tx.query(
      `UPDATE payment_collection
          SET status = $2, authorized_amount = $3, updated_at = now()
        WHERE id = $1`,
      [collectionId, status, authorizedAmount]
    )
  }

  /** The collection as core answers it: region (with providers) and sessions. */
  protected async loadResponse(
    tx: EntityManager,
    collectionId: string
  ): Promise<PaymentCollection> {
    const collection = await tx
      .withRepository(this.paymentCollectionRepository_)
      .findOne({
        where: { id: collectionId },
        relations: { region: { payment_providers: true }, payment_sessions: true },
      })
    if (!collection) {
      throw new MedusaError(
        MedusaError.Types.NOT_FOUND,
        `Payment collection with id ${collectionId} was not found`
      )
    }
    return collection
  }

  protected async retrieveCustomer(
    tx: EntityManager,
    customerId?: string
  ): Promise<CustomerLike | null> {
    if (!customerId) {
      return null
    }
    return await this.customerService_
      .withTransaction(tx)
      .retrieve(customerId, { select: ["id", "email", "metadata"] })
      .catch(() => null)
  }

  /** The input core builds for a payment collection's session. */
  protected sessionInput(
    collection: LockedCollection,
    wanted: { provider_id: string; amount: number },
    customer: CustomerLike | null
  ) {
    return {
      cart: {
        email: customer?.email || "",
        context: {},
        shipping_methods: [],
        shipping_address: null,
        id: "",
        region_id: collection.region_id,
        total: wanted.amount,
      },
      resource_id: collection.id,
      currency_code: collection.currency_code,
      amount: wanted.amount,
      provider_id: wanted.provider_id,
      customer: customer as never,
    }
  }
}

type CustomerLike = { id: string; email: string; metadata?: unknown }
