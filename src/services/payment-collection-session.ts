import {
  CustomerService,
  EventBusService,
  PaymentProviderService,
  PaymentSession,
  TransactionBaseService,
} from "@medusajs/medusa"
import { MedusaError } from "medusa-core-utils"
import { EntityManager } from "typeorm"
import {
  CollectionRow,
  RegionWithProviders,
  SessionRow,
  linkPayment,
  linkSession,
  listPayments,
  listSessions,
  lockCollectionNoWait,
  markSessionRefused,
  readCollection,
  readSessionsAndRegion,
  saveCollectionStatus,
} from "../lib/collection-queries"
import {
  PG_LOCK_NOT_AVAILABLE,
  conflictError,
  isMedusaError,
  isRetryableConflict,
  pgCode,
} from "../lib/errors"
import { AlreadySetHints } from "../lib/already-set-hints"
import { KeyedQueue } from "../lib/keyed-queue"
import { ProviderGateway } from "../lib/provider-gateway"
import {
  RequestedSession,
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
  customerService: CustomerService
  eventBusService: EventBusService
  logger: { warn: (m: string) => void; error: (m: string) => void }
}

type Work<T> = (
  tx: EntityManager,
  collection: CollectionRow,
  provider: ProviderGateway
) => Promise<T>

type CustomerLike = { id: string; email: string; metadata?: unknown }

/** A session as paymentProviderService takes and returns it. */
type Session = SessionRow | PaymentSession

/** `{ payment_collection }` of the session endpoints, as core answers it. */
export type CollectionWithSessions = CollectionRow & {
  region: RegionWithProviders["region"]
  payment_sessions: Session[]
}

/** `{ payment_collection }` of the batch authorize endpoint, as core answers it. */
export type CollectionWithPayments = CollectionRow & {
  payment_sessions: Session[]
  payments: Record<string, unknown>[]
}

const SESSION_STATUSES_ALLOWED = ["not_paid", "awaiting"]
const BATCH_STATUSES_ALLOWED = ["not_paid", "awaiting", "partially_authorized"]

/** Backoff between attempts at a row another process holds: 5, 10, 20 … 100 ms. */
const LOCK_RETRY_MIN_MS = 5
const LOCK_RETRY_MAX_MS = 100
/** Attempts at a transaction that hit a serialization failure or deadlock. */
const MAX_CONFLICT_ATTEMPTS = 3

/** One per process: see KeyedQueue for why it exists next to the row lock. */
const collectionQueue = new KeyedQueue()
/** One per process: which collections are worth trying the lock-free read on. */
const alreadySetHints = new AlreadySetHints()

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Core's GET loads `region` without its providers. */
function withoutProviders(region: RegionWithProviders["region"]): Record<string, unknown> {
  const { payment_providers: _providers, ...rest } = region
  return rest
}

function replaceSession(sessions: Session[], updated: Session): void {
  const index = sessions.findIndex((s) => s.id === updated.id)
  if (index >= 0) {
    sessions[index] = updated
  }
}

export default class PaymentCollectionSessionService extends TransactionBaseService {
  static readonly Events = {
    PAYMENT_AUTHORIZED: "payment-collection.payment_authorized",
  }

  protected readonly options_: ResolvedPluginOptions
  protected readonly paymentProviderService_: PaymentProviderService
  protected readonly customerService_: CustomerService
  protected readonly eventBusService_: EventBusService
  protected readonly logger_: InjectedDependencies["logger"]

  constructor(container: InjectedDependencies, options?: PluginOptions) {
    // eslint-disable-next-line prefer-rest-params
    super(container, options as Record<string, unknown>)
    this.options_ = resolveOptions(options)
    this.paymentProviderService_ = container.paymentProviderService
    this.customerService_ = container.customerService
    this.eventBusService_ = container.eventBusService
    this.logger_ = container.logger
  }

  /**
   * "Get a PaymentCollection" with core's default fields and relations, read
   * without core's query building (requests with `fields`/`expand` go to
   * core's PaymentCollectionService instead).
   */
  async retrieveWithDefaults(collectionId: string): Promise<Record<string, unknown>> {
    const read = await readCollection(this.manager_, collectionId)
    if (!read) {
      throw new MedusaError(
        MedusaError.Types.NOT_FOUND,
        `Payment collection with id ${collectionId} was not found`
      )
    }
    const { id, type, status, description, amount, currency_code, metadata } =
      read.collection
    const region = read.region && withoutProviders(read.region)
    return {
      id,
      type,
      status,
      description,
      amount,
      currency_code,
      metadata,
      payment_sessions: read.sessions,
      region,
    }
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
  ): Promise<CollectionWithSessions> {
    const unchanged = alreadySetHints.suggests(collectionId, providerId)
      ? await this.answerIfAlreadySet(collectionId, providerId)
      : undefined
    if (unchanged) {
      return unchanged
    }
    return await this.withLockedCollection(
      collectionId,
      async (tx, collection, provider) => {
        this.assertStatus(collection, SESSION_STATUSES_ALLOWED)
        const current = await readSessionsAndRegion(tx, collection)
        const sameProvider = current.sessions.find((s) => s.provider_id === providerId)
        const wanted: RequestedSession = {
          provider_id: providerId,
          amount: collection.amount,
          session_id: sameProvider?.id,
        }
        const answer = await this.applySessions(tx, collection, provider, current, [wanted], customerId)
        alreadySetHints.remember(collection.id, providerId)
        return answer
      }
    )
  }

  /**
   * The answer to a "Create a Payment Session" that would change nothing: the
   * collection already has exactly one session, of this provider, for its full
   * amount, and the provider is still usable. Such a request writes nothing
   * and calls no provider, so it is answered from one consistent read, without
   * waiting for the lock — it is a read that happened before whatever holds
   * the lock commits. (Core would call the provider's update again, also
   * passing a customer who logged in since; the plugin does not, locked or not.)
   */
  protected async answerIfAlreadySet(
    collectionId: string,
    providerId: string
  ): Promise<CollectionWithSessions | undefined> {
    const read = await readCollection(this.manager_, collectionId)
    if (!read?.region) {
      return undefined
    }
    const { collection, sessions, region, enabledProviderIds } = read
    const [session] = sessions
    if (
      !SESSION_STATUSES_ALLOWED.includes(collection.status) ||
      sessions.length !== 1 ||
      session.provider_id !== providerId ||
      session.amount !== collection.amount ||
      !this.usableProviders(this.gateway(), enabledProviderIds).has(providerId)
    ) {
      return undefined
    }
    return { ...collection, region, payment_sessions: sessions }
  }

  /** "Manage Payment Sessions": the collection holds exactly `requested`. */
  async setSessionsBatch(
    collectionId: string,
    requested: RequestedSession[],
    customerId?: string
  ): Promise<CollectionWithSessions> {
    return await this.withLockedCollection(
      collectionId,
      async (tx, collection, provider) => {
        this.assertStatus(collection, BATCH_STATUSES_ALLOWED)
        const current = await readSessionsAndRegion(tx, collection)
        return await this.applySessions(tx, collection, provider, current, requested, customerId)
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
  ): Promise<{ collection: CollectionWithPayments; refused: string[] }> {
    return await this.withLockedCollection(
      collectionId,
      async (tx, collection, provider) => {
        const sessions = await listSessions(tx, collection.id)
        const known = new Set(sessions.map((s) => s.id))
        const foreign = sessionIds.filter((id) => !known.has(id))
        if (foreign.length) {
          throw new MedusaError(
            MedusaError.Types.NOT_FOUND,
            `Payment session ${foreign.join(", ")} does not belong to payment collection ${collection.id}`
          )
        }
        const { refused, collection: updated } = await this.authorizeInLock(
          tx,
          collection,
          provider,
          sessions,
          new Set(sessionIds),
          context
        )
        return {
          collection: {
            ...updated,
            payment_sessions: sessions,
            payments: await listPayments(tx, collection.id),
          },
          refused,
        }
      }
    )
  }

  /** "Refresh a Payment Session": a new provider session replaces the old one. */
  async refreshSession(
    collectionId: string,
    sessionId: string,
    customerId?: string
  ): Promise<Session> {
    return await this.withLockedCollection(
      collectionId,
      async (tx, collection, provider) => {
        this.assertStatus(collection, BATCH_STATUSES_ALLOWED)
        const { sessions, enabledProviderIds } = await readSessionsAndRegion(tx, collection)
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
        if (!this.usableProviders(provider, enabledProviderIds).has(session.provider_id)) {
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
   *
   * (2) is taken with NOWAIT and retried with backoff until `lock_timeout_ms`:
   * a request waiting for another process never holds a pool connection.
   */
  protected async withLockedCollection<T>(
    collectionId: string,
    work: Work<T>
  ): Promise<T> {
    const deadline = Date.now() + this.options_.lock_timeout_ms
    const busy = () =>
      conflictError(
        `Payment collection ${collectionId} is busy with another request; retry later`
      )
    return await collectionQueue.run(
      collectionId,
      this.options_.lock_timeout_ms,
      async () => {
        let conflicts = 0
        for (let lockAttempt = 0; ; lockAttempt++) {
          const provider = this.gateway()
          try {
            return await this.manager_.transaction(async (tx) => {
              const collection = await lockCollectionNoWait(
                tx,
                collectionId,
                Math.max(1, deadline - Date.now())
              )
              if (!collection) {
                throw new MedusaError(
                  MedusaError.Types.NOT_FOUND,
                  `Payment collection with id ${collectionId} was not found`
                )
              }
              return await work(tx, collection, provider)
            })
          } catch (err) {
            const undoable = provider.hasSideEffects
            await provider.undo()
            if (pgCode(err) === PG_LOCK_NOT_AVAILABLE && Date.now() < deadline) {
              const backoff = Math.min(
                LOCK_RETRY_MAX_MS,
                LOCK_RETRY_MIN_MS * 2 ** Math.min(lockAttempt, 5)
              )
              await sleep(backoff * (0.5 + Math.random()))
              continue
            }
            // A retry is safe only while no provider was involved.
            if (
              isRetryableConflict(err) &&
              !undoable &&
              ++conflicts < MAX_CONFLICT_ATTEMPTS
            ) {
              continue
            }
            if (pgCode(err) === PG_LOCK_NOT_AVAILABLE || isRetryableConflict(err)) {
              throw busy()
            }
            throw err
          }
        }
      },
      busy
    )
  }

  protected gateway(): ProviderGateway {
    return new ProviderGateway(
      this.paymentProviderService_,
      this.manager_,
      this.options_.provider_timeout_ms,
      this.logger_
    )
  }

  protected assertStatus(collection: CollectionRow, allowed: string[]): void {
    if (!allowed.includes(collection.status)) {
      throw new MedusaError(
        MedusaError.Types.NOT_ALLOWED,
        `Cannot change the payment sessions of a payment collection with status ${collection.status}`
      )
    }
  }

  /**
   * Providers a collection may use right now: enabled on its region and in the
   * plugin's admin switch (both read on every request, so an admin's change
   * applies at once on every instance) and installed in this backend.
   */
  protected usableProviders(
    provider: ProviderGateway,
    enabledProviderIds: string[]
  ): Set<string> {
    return new Set(enabledProviderIds.filter((id) => provider.isInstalled(id)))
  }

  /**
   * Turns the collection's sessions into exactly `requested` and answers the
   * collection with its region and sessions, in the requested order (as core).
   */
  protected async applySessions(
    tx: EntityManager,
    collection: CollectionRow,
    provider: ProviderGateway,
    current: RegionWithProviders & { sessions: SessionRow[] },
    requested: RequestedSession[],
    customerId?: string
  ): Promise<CollectionWithSessions> {
    const { region, enabledProviderIds, sessions: existing } = current
    const plan = planSessions({
      collectionAmount: collection.amount,
      existing,
      requested,
      usableProviders: this.usableProviders(provider, enabledProviderIds),
    })

    const needsProvider = plan.create.length || plan.update.length
    const customer = needsProvider
      ? await this.retrieveCustomer(tx, customerId)
      : null

    // New sessions first: if one is refused, nothing was removed yet.
    const created: Session[] = []
    for (const wanted of plan.create) {
      created.push(await this.initiate(tx, collection, provider, wanted, customer))
    }
    const resulting = new Map<string, Session>(plan.keep.map((s) => [s.id, s]))
    for (const { session, amount } of plan.update) {
      const input = this.sessionInput(
        collection,
        { provider_id: session.provider_id, amount },
        customer
      )
      const previousInput = this.sessionInput(
        collection,
        { provider_id: session.provider_id, amount: session.amount ?? collection.amount },
        customer
      )
      const updated = await provider.call(
        session.provider_id,
        "update the payment",
        () => this.paymentProviderService_.withTransaction(tx).updateSession(session, input),
        {
          // Taking an update back rewrites the row too, with the values the
          // rollback restored.
          undoUpdate: (data) =>
            this.paymentProviderService_
              .withTransaction(this.manager_)
              .updateSession({ id: session.id, provider_id: session.provider_id, data }, previousInput),
        }
      )
      resulting.set(session.id, updated)
    }
    await this.removeSessions(tx, provider, plan.remove)

    const payment_sessions = plan.steps.map((step) =>
      step.kind === "create" ? created.shift()! : resulting.get(step.session.id)!
    )
    return { ...collection, region, payment_sessions }
  }

  protected async initiate(
    tx: EntityManager,
    collection: CollectionRow,
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
    await linkSession(tx, collection.id, session.id)
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
    sessions: SessionRow[]
  ): Promise<void> {
    for (const session of sessions) {
      await provider.call(session.provider_id, "delete the payment", () =>
        this.paymentProviderService_
          .withTransaction(tx)
          .deleteSession(session as PaymentSession)
      )
    }
  }

  protected async authorizeInLock(
    tx: EntityManager,
    collection: CollectionRow,
    provider: ProviderGateway,
    sessions: SessionRow[],
    requested: ReadonlySet<string>,
    context: Record<string, unknown>
  ): Promise<{ refused: string[]; collection: CollectionRow }> {
    // `sessions` is kept in step with what is written, for the answer.
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
      return { refused: [], collection }
    }
    if (collection.amount <= 0) {
      const updated = await saveCollectionStatus(tx, collection.id, "authorized", 0)
      return { refused: [], collection: updated }
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
    let attempted = false

    for (const session of sessions) {
      if (isAuthorized(session)) {
        authorizedAmount += session.amount ?? 0
        continue
      }
      if (!requested.has(session.id)) {
        continue
      }
      attempted = true
      let result: PaymentSession | undefined
      try {
        result = await provider.call(
          session.provider_id,
          "authorize the payment",
          () => providerTx.authorizePayment(session as PaymentSession, context)
        )
      } catch (err) {
        if (!isMedusaError(err, MedusaError.Types.INVALID_DATA)) {
          throw err
        }
        // The provider refused: remember it on the session and go on, so the
        // shopper can change the sessions and try again.
        refused.push(session.id)
        replaceSession(sessions, await markSessionRefused(tx, session.id))
        continue
      }
      if (result) {
        replaceSession(sessions, result)
      }
      if (result?.status !== "authorized") {
        continue
      }
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
      await linkPayment(tx, collection.id, payment.id)
    }

    const status = statusForAuthorizedAmount(authorizedAmount, collection.amount)
    if (
      !attempted &&
      status === collection.status &&
      authorizedAmount === collection.authorized_amount
    ) {
      return { refused, collection }
    }
    const updated = await saveCollectionStatus(
      tx,
      collection.id,
      status,
      authorizedAmount
    )
    await this.eventBusService_
      .withTransaction(tx)
      .emit(PaymentCollectionSessionService.Events.PAYMENT_AUTHORIZED, {
        id: collection.id,
      })
    return { refused, collection: updated }
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
    collection: CollectionRow,
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
