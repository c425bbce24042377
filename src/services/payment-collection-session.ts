import { PaymentCollectionService, TransactionBaseService } from "@medusajs/medusa"
import { MedusaError } from "medusa-core-utils"
import { EntityManager } from "typeorm"
import { CollectionRead, CollectionRow, RegionWithProviders, SessionRow } from "../db/collection-queries"
import { CollectionWithSessions, collectionWithSessions, createdSessionResponse, sessionResponse } from "../db/collection-response"
import { NewSession, SessionUpdate } from "../db/collection-writes"
import { AlreadySetHints } from "../lib/already-set-hints"
import { isUnknownFieldOrRelation } from "../lib/errors"
import { CollectionWork, CommittedFailure, Decision, RequestInfo, answerWith } from "../journal/collection-work"
import { JournaledCalls } from "../journal/journaled-calls"
import { RequestedSession, isAuthorized, planSessions } from "../rules/session-plan"
import { PluginOptions, ResolvedPluginOptions, resolveOptions } from "../types/options"
import type PaymentCollectionJournalService from "./payment-collection-journal"
import type PaymentCollectionStoreService from "./payment-collection-store"

type InjectedDependencies = {
  manager: EntityManager
  paymentCollectionService: PaymentCollectionService
  paymentCollectionStoreService: PaymentCollectionStoreService
  paymentCollectionJournalService: PaymentCollectionJournalService
}

export type { CollectionWithSessions } from "../db/collection-response"
export type { IdempotencyClaim, RequestInfo } from "../journal/collection-work"

const SESSION_STATUSES_ALLOWED = ["not_paid", "awaiting"]
const BATCH_STATUSES_ALLOWED = ["not_paid", "awaiting", "partially_authorized"]

/** Core's GET loads `region` without its providers. */
function withoutProviders(region: RegionWithProviders["region"]): Record<string, unknown> {
  const { payment_providers: _providers, ...rest } = region
  return rest
}

/**
 * The session endpoints of the group: "Get a PaymentCollection", "Create a
 * Payment Session", "Manage Payment Sessions" (batch) and "Refresh a Payment
 * Session". Each change runs under the collection's lock with every provider
 * call journaled (see journal/collection-work.ts); authorization lives in
 * payment-collection-authorization.ts. One per process: it keeps the hints of
 * which collections a repeated create may answer without the lock.
 */
export default class PaymentCollectionSessionService extends TransactionBaseService {
  static LIFE_TIME = "SINGLETON"

  protected readonly options_: ResolvedPluginOptions
  protected readonly collections_: PaymentCollectionStoreService
  protected readonly journal_: PaymentCollectionJournalService
  protected readonly paymentCollectionService_: PaymentCollectionService
  protected readonly alreadySetHints_ = new AlreadySetHints()

  constructor(container: InjectedDependencies, options?: PluginOptions) {
    super(container, options as Record<string, unknown>)
    this.options_ = resolveOptions(options)
    this.collections_ = container.paymentCollectionStoreService
    this.journal_ = container.paymentCollectionJournalService
    this.paymentCollectionService_ = container.paymentCollectionService
  }

  /**
   * "Get a PaymentCollection". Without `fields`/`expand` (no `config`) the
   * plugin reads core's default fields and relations itself; with them, core's
   * service answers — except that a field or relation the entity lacks is the
   * client's 400, not core's 500, and the attempt journal is not the shopper's
   * to expand.
   */
  async retrieve(collectionId: string, config?: { relations?: string[] }): Promise<{ payment_collection: Record<string, unknown> }> {
    if (!config) {
      return { payment_collection: await this.retrieveWithDefaults(collectionId) }
    }
    const relations = config.relations ?? []
    if (relations.some((relation) => relation === "attempts" || relation.startsWith("attempts."))) {
      // The attempt journal is the merchant's (GET /admin/payment-collections/:id/attempts).
      throw new MedusaError(MedusaError.Types.INVALID_DATA, "Invalid fields or expand: attempts cannot be expanded here")
    }
    const payment_collection = await this.paymentCollectionService_.retrieve(collectionId, config as never).catch((err: unknown) => {
      if (isUnknownFieldOrRelation(err)) {
        throw new MedusaError(MedusaError.Types.INVALID_DATA, `Invalid fields or expand: ${(err as Error).message}`)
      }
      throw err
    })
    return { payment_collection: payment_collection as unknown as Record<string, unknown> }
  }

  /** "Get a PaymentCollection" with core's default fields and relations, read without core's query building. */
  protected async retrieveWithDefaults(collectionId: string): Promise<Record<string, unknown>> {
    const read = await this.collections_.read(collectionId)
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
  ): Promise<{ payment_collection: CollectionWithSessions }> {
    const unchanged = this.alreadySetHints_.suggests(collectionId, providerId)
      ? await this.answerIfAlreadySet(collectionId, providerId)
      : undefined
    if (unchanged) {
      return { payment_collection: unchanged }
    }
    return await this.work(collectionId, request, async (tx, collection, calls, current) => {
      this.assertStatus(collection, SESSION_STATUSES_ALLOWED)
      const sameProvider = current.sessions.find((s) => s.provider_id === providerId)
      const wanted: RequestedSession = {
        provider_id: providerId,
        amount: collection.amount,
        session_id: sameProvider?.id,
      }
      const answer = await this.applySessions(tx, collection, calls, current, [wanted])
      this.alreadySetHints_.remember(collection.id, providerId)
      return answer
    }, answerWith((payment_collection) => ({ payment_collection })))
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
    const read = await this.collections_.read(collectionId)
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
  ): Promise<{ payment_collection: CollectionWithSessions }> {
    return await this.work(collectionId, request, async (tx, collection, calls, current) => {
      this.assertStatus(collection, BATCH_STATUSES_ALLOWED)
      return await this.applySessions(tx, collection, calls, current, requested)
    }, answerWith((payment_collection) => ({ payment_collection })))
  }

  /** "Refresh a Payment Session": a new provider session replaces the old one. */
  async refreshSession(
    collectionId: string,
    sessionId: string,
    request: RequestInfo = {}
  ): Promise<{ payment_session: SessionRow }> {
    return await this.work(collectionId, request, async (tx, collection, calls, { sessions, enabledProviderIds, payer }) => {
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
      const changes = this.journal_.sessionChanges
      const confirmed = await changes.askBeforeRemoving(tx, collection, calls, [session])
      if (confirmed) {
        return confirmed
      }
      const created = await changes.initiate(
        tx,
        collection,
        calls,
        { provider_id: session.provider_id, amount: session.amount ?? collection.amount },
        payer
      )
      const [row] = await changes.write(tx, collection, calls, { created: [created], updated: [], removed: [session] })
      return createdSessionResponse(row)
    }, answerWith((payment_session) => ({ payment_session })))
  }

  protected async work<T, B>(
    collectionId: string,
    request: RequestInfo,
    work: CollectionWork<T>,
    decide: (result: T | CommittedFailure) => Decision<B>
  ): Promise<B> {
    return await this.journal_.work(collectionId, request, work, decide)
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
    return new Set(enabledProviderIds.filter((id) => this.journal_.client.isInstalled(id)))
  }

  /**
   * Turns the collection's sessions into exactly `requested` and answers the
   * collection with its region and sessions, in the requested order (as core).
   */
  protected async applySessions(
    tx: EntityManager,
    collection: CollectionRow,
    calls: JournaledCalls,
    current: CollectionRead,
    requested: RequestedSession[]
  ): Promise<CollectionWithSessions | CommittedFailure> {
    const { region, enabledProviderIds, sessions: existing } = current
    const plan = planSessions({
      collectionAmount: collection.amount,
      existing,
      requested,
      usableProviders: this.usableProviders(enabledProviderIds),
    })
    const changes = this.journal_.sessionChanges
    // A new amount for a provider that answers it with a new object replaces the session's payment.
    const replaceable = plan.update.map((u) => u.session).filter((s) => this.journal_.client.replacesOnUpdate(s.provider_id))
    const confirmed = await changes.askBeforeRemoving(tx, collection, calls, [...plan.remove, ...replaceable])
    if (confirmed) {
      return confirmed
    }
    const { payer } = current

    const created: NewSession[] = []
    for (const wanted of plan.create) {
      created.push(await changes.initiate(tx, collection, calls, wanted, payer))
    }
    const updated: SessionUpdate[] = []
    const replaced: SessionRow[] = []
    for (const { session, amount } of plan.update) {
      const result = await changes.update(tx, collection, calls, session, amount, payer)
      updated.push(result.update)
      if (result.replaced) {
        replaced.push(session)
      }
    }

    const rows = await changes.write(tx, collection, calls, { created, updated, removed: plan.remove, replaced })
    const byId = new Map(rows.map((row) => [row.id, row]))
    const createdIds = new Set(created.map((c) => c.id))
    const payment_sessions = plan.steps.map((step) =>
      step.kind === "create" ? byId.get(created.shift()!.id)! : byId.get(step.session.id) ?? step.session
    )
    return collectionWithSessions(collection, region, payment_sessions, createdIds)
  }
}
