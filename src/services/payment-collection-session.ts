import { PaymentProviderService, TransactionBaseService } from "@medusajs/medusa"
import { MedusaError } from "medusa-core-utils"
import { EntityManager } from "typeorm"
import { AlreadySetHints } from "../lib/already-set-hints"
import { CollectionLock } from "../lib/collection-lock"
import { CollectionRead, CollectionRow, RegionWithProviders, SessionRow, readCollection } from "../lib/collection-queries"
import { CollectionWithSessions, collectionWithSessions, createdSessionResponse, sessionResponse } from "../lib/collection-response"
import { NewSession, SessionUpdate, writeSessionChanges } from "../lib/collection-writes"
import { RequestInfo, workOnCollection } from "../lib/collection-work"
import { entityId } from "../lib/entity-id"
import { CallSpec, ProviderCalls } from "../lib/provider-calls"
import { ProviderClient, ProviderOutcome } from "../lib/provider-client"
import { providerFailure } from "../lib/provider-failure"
import { CustomerLike, processorContext } from "../lib/session-input"
import { RequestedSession, isAuthorized, planSessions } from "../lib/session-plan"
import { PluginOptions, ResolvedPluginOptions, resolveOptions } from "../types/options"
import type PaymentAttemptsService from "./payment-attempts"
import type PaymentReconcilerService from "./payment-reconciler"

type InjectedDependencies = {
  manager: EntityManager
  paymentProviderService: PaymentProviderService
  paymentAttemptsService: PaymentAttemptsService
  paymentReconcilerService: PaymentReconcilerService
  logger: { warn: (m: string) => void; error: (m: string) => void }
}

export type { CollectionWithSessions } from "../lib/collection-response"
export type { RequestInfo } from "../lib/collection-work"

const SESSION_STATUSES_ALLOWED = ["not_paid", "awaiting"]
const BATCH_STATUSES_ALLOWED = ["not_paid", "awaiting", "partially_authorized"]

/** One per process: which collections are worth trying the lock-free read on. */
const alreadySetHints = new AlreadySetHints()

/** Core's GET loads `region` without its providers. */
function withoutProviders(region: RegionWithProviders["region"]): Record<string, unknown> {
  const { payment_providers: _providers, ...rest } = region
  return rest
}

/** The id a provider gives its own object (a Stripe intent's `pi_…`), when it has one. */
function providerObjectId(data: Record<string, unknown> | null | undefined): unknown {
  return data?.id
}

/**
 * The session endpoints of the group: "Get a PaymentCollection", "Create a
 * Payment Session", "Manage Payment Sessions" (batch) and "Refresh a Payment
 * Session". Each change runs under the collection's lock with every provider
 * call journaled (see lib/collection-work.ts); authorization lives in
 * payment-collection-authorization.ts.
 */
export default class PaymentCollectionSessionService extends TransactionBaseService {
  protected readonly options_: ResolvedPluginOptions
  protected readonly client_: ProviderClient
  protected readonly attempts_: PaymentAttemptsService
  protected readonly reconciler_: PaymentReconcilerService
  protected readonly logger_: InjectedDependencies["logger"]

  constructor(container: InjectedDependencies, options?: PluginOptions) {
    // eslint-disable-next-line prefer-rest-params
    super(container, options as Record<string, unknown>)
    this.options_ = resolveOptions(options)
    this.client_ = new ProviderClient(container.paymentProviderService, this.options_.provider_timeout_ms)
    this.attempts_ = container.paymentAttemptsService
    this.reconciler_ = container.paymentReconcilerService
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
    const { id, type, status, description, amount, currency_code, metadata } = read.collection
    const region = read.region && withoutProviders(read.region)
    return {
      id,
      type,
      status,
      description,
      amount,
      currency_code,
      metadata,
      payment_sessions: read.sessions.map(sessionResponse),
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
    request: RequestInfo = {}
  ): Promise<CollectionWithSessions> {
    const unchanged = alreadySetHints.suggests(collectionId, providerId)
      ? await this.answerIfAlreadySet(collectionId, providerId)
      : undefined
    if (unchanged) {
      return unchanged
    }
    return await this.work(collectionId, request, async (tx, collection, calls, current) => {
      this.assertStatus(collection, SESSION_STATUSES_ALLOWED)
      const sameProvider = current.sessions.find((s) => s.provider_id === providerId)
      const wanted: RequestedSession = {
        provider_id: providerId,
        amount: collection.amount,
        session_id: sameProvider?.id,
      }
      const answer = await this.applySessions(tx, collection, calls, current, [wanted], request)
      alreadySetHints.remember(collection.id, providerId)
      return answer
    })
  }

  /**
   * The answer to a "Create a Payment Session" that would change nothing: the
   * collection already has exactly one session, of this provider, for its full
   * amount, and the provider is still usable. Such a request writes nothing
   * and calls no provider, so it is answered from one consistent read, without
   * waiting for the lock — it is a read that happened before whatever holds
   * the lock commits. (Core would call the provider's update again; the plugin
   * does not, locked or not.)
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
      !this.usableProviders(enabledProviderIds).has(providerId)
    ) {
      return undefined
    }
    return collectionWithSessions(collection, region, sessions)
  }

  /** "Manage Payment Sessions": the collection holds exactly `requested`. */
  async setSessionsBatch(
    collectionId: string,
    requested: RequestedSession[],
    request: RequestInfo = {}
  ): Promise<CollectionWithSessions> {
    return await this.work(collectionId, request, async (tx, collection, calls, current) => {
      this.assertStatus(collection, BATCH_STATUSES_ALLOWED)
      return await this.applySessions(tx, collection, calls, current, requested, request)
    })
  }

  /** "Refresh a Payment Session": a new provider session replaces the old one. */
  async refreshSession(
    collectionId: string,
    sessionId: string,
    request: RequestInfo = {}
  ): Promise<SessionRow> {
    return await this.work(collectionId, request, async (tx, collection, calls, { sessions, enabledProviderIds }) => {
      this.assertStatus(collection, BATCH_STATUSES_ALLOWED)
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
      if (!this.usableProviders(enabledProviderIds).has(session.provider_id)) {
        throw new MedusaError(
          MedusaError.Types.INVALID_DATA,
          `Payment provider ${session.provider_id} is not available for this payment collection: it must be installed, enabled on the region and not switched off for payment collections`
        )
      }
      const customer = await this.retrieveCustomer(tx, request.customerId)
      const created = await this.initiate(
        tx,
        collection,
        calls,
        { provider_id: session.provider_id, amount: session.amount ?? collection.amount },
        customer
      )
      const [row] = await this.write(tx, collection, calls, { created: [created], updated: [], removed: [session] })
      return createdSessionResponse(row)
    })
  }

  protected async work<T>(
    collectionId: string,
    request: RequestInfo,
    work: (tx: EntityManager, collection: CollectionRow, calls: ProviderCalls, read: CollectionRead) => Promise<T>
  ): Promise<T> {
    const deps = {
      options: this.options_,
      lock: new CollectionLock(this.manager_, this.options_.lock_timeout_ms),
      attempts: this.attempts_,
      reconciler: this.reconciler_,
      logger: this.logger_,
    }
    return await workOnCollection(deps, collectionId, request, work)
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
  protected usableProviders(enabledProviderIds: string[]): Set<string> {
    return new Set(enabledProviderIds.filter((id) => this.client_.isInstalled(id)))
  }

  /**
   * Turns the collection's sessions into exactly `requested` and answers the
   * collection with its region and sessions, in the requested order (as core).
   * New sessions are initiated and changed ones updated before anything is
   * written; removed sessions are deleted at their provider once the
   * transaction has committed (staged in it, so a rollback drops them).
   */
  protected async applySessions(
    tx: EntityManager,
    collection: CollectionRow,
    calls: ProviderCalls,
    current: CollectionRead,
    requested: RequestedSession[],
    request: RequestInfo
  ): Promise<CollectionWithSessions> {
    const { region, enabledProviderIds, sessions: existing } = current
    const plan = planSessions({
      collectionAmount: collection.amount,
      existing,
      requested,
      usableProviders: this.usableProviders(enabledProviderIds),
    })

    const needsProvider = plan.create.length || plan.update.length
    const customer = needsProvider ? await this.retrieveCustomer(tx, request.customerId) : null

    const created: NewSession[] = []
    for (const wanted of plan.create) {
      created.push(await this.initiate(tx, collection, calls, wanted, customer))
    }
    const updated: SessionUpdate[] = []
    const replaced: SessionRow[] = []
    for (const { session, amount } of plan.update) {
      const context = processorContext(collection, amount, customer)
      const outcome = await this.callProvider(
        calls,
        { operation: "update", providerId: session.provider_id, sessionId: session.id, amount },
        "update the payment",
        () => this.client_.update(session.provider_id, session, context, tx),
        (value) => value.sessionData ?? null
      )
      const data = outcome.sessionData
      if (data && providerObjectId(data) !== undefined && providerObjectId(data) !== providerObjectId(session.data)) {
        // The provider answered with a new object (Stripe re-initiates when the customer
        // differs): the old one is deleted once this commits.
        replaced.push(session)
      }
      updated.push({ id: session.id, amount, data })
    }

    const rows = await this.write(tx, collection, calls, { created, updated, removed: plan.remove, replaced })
    const byId = new Map(rows.map((row) => [row.id, row]))
    const createdIds = new Set(created.map((c) => c.id))
    const payment_sessions = plan.steps.map((step) =>
      step.kind === "create" ? byId.get(created.shift()!.id)! : byId.get(step.session.id) ?? step.session
    )
    return collectionWithSessions(collection, region, payment_sessions, createdIds)
  }

  protected async initiate(
    tx: EntityManager,
    collection: CollectionRow,
    calls: ProviderCalls,
    wanted: RequestedSession,
    customer: CustomerLike | null
  ): Promise<NewSession> {
    // The session's id is chosen first, so its journal row names what a commit would hold.
    const id = entityId("ps")
    const context = processorContext(collection, wanted.amount, customer)
    const { sessionData } = await this.callProvider(
      calls,
      { operation: "initiate", providerId: wanted.provider_id, sessionId: id, amount: wanted.amount },
      "initiate the payment",
      () => this.client_.initiate(wanted.provider_id, context, tx),
      (value) => value.sessionData
    )
    return { id, provider_id: wanted.provider_id, amount: wanted.amount, data: sessionData }
  }

  /**
   * One journaled call whose success this request writes in its transaction;
   * a failure ends the request (what was done before is finished afterwards).
   */
  protected async callProvider<T>(
    calls: ProviderCalls,
    spec: CallSpec,
    action: string,
    invoke: () => Promise<ProviderOutcome<T>>,
    effectData: (value: T) => Record<string, unknown> | null
  ): Promise<T> {
    const { outcome, attemptId } = await calls.callWithId(spec, invoke, effectData)
    if (outcome.kind !== "ok") {
      throw providerFailure(spec.providerId, action, outcome, this.options_.provider_timeout_ms)
    }
    calls.willCommit(attemptId)
    return outcome.value
  }

  /**
   * Writes the sessions and links, marks the journal rows committed, and stages
   * the deletes of removed (or replaced) provider sessions, all in the
   * request's transaction.
   */
  protected async write(
    tx: EntityManager,
    collection: CollectionRow,
    calls: ProviderCalls,
    changes: { created: NewSession[]; updated: SessionUpdate[]; removed: SessionRow[]; replaced?: SessionRow[] }
  ): Promise<SessionRow[]> {
    const toDelete = [...changes.removed, ...(changes.replaced ?? [])]
    if (toDelete.length) {
      const staged = await this.attempts_.stage(
        tx,
        toDelete.map((session) => ({
          collectionId: collection.id,
          sessionId: session.id,
          providerId: session.provider_id,
          operation: "delete" as const,
          amount: session.amount,
          currencyCode: collection.currency_code,
          providerData: session.data,
          requestId: calls.origin.requestId,
          idempotencyKey: calls.origin.idempotencyKey,
        })),
        // The request deletes them right after its commit, one after the other.
        toDelete.length * this.options_.provider_timeout_ms + this.attempts_.leaseMs
      )
      calls.addStaged(staged)
    }
    return await writeSessionChanges(tx, collection.id, {
      created: changes.created,
      updated: changes.updated,
      removedIds: changes.removed.map((s) => s.id),
      committedAttemptIds: calls.committedIds(),
    })
  }

  /** The logged-in customer's email, which core passes to providers (as the cart's email). */
  protected async retrieveCustomer(tx: EntityManager, customerId?: string): Promise<CustomerLike | null> {
    if (!customerId) {
      return null
    }
    const [customer]: CustomerLike[] = await tx.query(
      `SELECT id, email FROM customer WHERE id = $1 AND deleted_at IS NULL`,
      [customerId]
    )
    return customer ?? null
  }
}
