import { EntityManager } from "typeorm"
import { CollectionRow, SessionRow } from "../db/collection-queries"
import { NewSession, SessionUpdate, writeSessionChanges } from "../db/collection-writes"
import { entityId } from "../lib/entity-id"
import { ProviderClient, ProviderOutcome } from "../providers/provider-client"
import { providerFailure } from "../providers/provider-failure"
import { CustomerLike, processorContext } from "../providers/session-input"
import { RequestedSession } from "../rules/session-plan"
import { ResolvedPluginOptions } from "../types/options"
import { AttemptStore } from "./attempt-store"
import { CallSpec, JournaledCalls } from "./journaled-calls"

/** The id a provider gives its own object (a Stripe intent's `pi_…`), when it has one. */
function providerObjectId(data: Record<string, unknown> | null | undefined): unknown {
  return data?.id
}

/**
 * What a request does to a collection's sessions, with every provider call
 * journaled: new sessions initiated and changed ones updated at their
 * provider before anything is written, then the rows written with the
 * journal's rows committed in the same statement, and the deletes of removed
 * sessions staged in the transaction (made once it has committed; a rollback
 * drops them). A provider's failure ends the request; what it did before is
 * finished afterwards (see finisher.ts).
 */
export class SessionChanges {
  constructor(
    private readonly client: ProviderClient,
    private readonly store: AttemptStore,
    private readonly options: ResolvedPluginOptions
  ) {}

  async initiate(
    tx: EntityManager,
    collection: CollectionRow,
    calls: JournaledCalls,
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
      () => this.client.initiate(wanted.provider_id, context, tx),
      (value) => value.sessionData
    )
    return { id, provider_id: wanted.provider_id, amount: wanted.amount, data: sessionData }
  }

  /**
   * A new amount for `session` at its provider. `replaced` when the provider
   * answered with a new object (Stripe re-initiates when the customer
   * differs): the old one is deleted once the request commits.
   */
  async update(
    tx: EntityManager,
    collection: CollectionRow,
    calls: JournaledCalls,
    session: SessionRow,
    amount: number,
    customer: CustomerLike | null
  ): Promise<{ update: SessionUpdate; replaced: boolean }> {
    const context = processorContext(collection, amount, customer)
    const { sessionData: data } = await this.callProvider(
      calls,
      { operation: "update", providerId: session.provider_id, sessionId: session.id, amount },
      "update the payment",
      () => this.client.update(session.provider_id, session, context, tx),
      (value) => value.sessionData ?? null
    )
    const replaced =
      !!data && providerObjectId(data) !== undefined && providerObjectId(data) !== providerObjectId(session.data)
    return { update: { id: session.id, amount, data }, replaced }
  }

  /**
   * Writes the sessions and links, marks the journal rows committed, and stages
   * the deletes of removed (or replaced) provider sessions, all in the
   * request's transaction.
   */
  async write(
    tx: EntityManager,
    collection: CollectionRow,
    calls: JournaledCalls,
    changes: { created: NewSession[]; updated: SessionUpdate[]; removed: SessionRow[]; replaced?: SessionRow[] }
  ): Promise<SessionRow[]> {
    const toDelete = [...changes.removed, ...(changes.replaced ?? [])]
    if (toDelete.length) {
      const staged = await this.store.stage(
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
        toDelete.length * this.options.provider_timeout_ms + this.store.leaseMs
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
  async customer(tx: EntityManager, customerId?: string): Promise<CustomerLike | null> {
    if (!customerId) {
      return null
    }
    const [customer]: CustomerLike[] = await tx.query(
      `SELECT id, email FROM customer WHERE id = $1 AND deleted_at IS NULL`,
      [customerId]
    )
    return customer ?? null
  }

  /**
   * One journaled call whose success this request writes in its transaction;
   * a failure ends the request (what was done before is finished afterwards).
   */
  private async callProvider<T>(
    calls: JournaledCalls,
    spec: CallSpec,
    action: string,
    invoke: () => Promise<ProviderOutcome<T>>,
    effectData: (value: T) => Record<string, unknown> | null
  ): Promise<T> {
    const { outcome, attemptId } = await calls.call(spec, invoke, effectData)
    if (outcome.kind !== "ok") {
      throw providerFailure(spec.providerId, action, outcome, this.options.provider_timeout_ms)
    }
    calls.willCommit(attemptId)
    return outcome.value
  }
}
