import { MedusaError } from "medusa-core-utils"
import { EntityManager } from "typeorm"
import { CollectionRow, SessionRow, listSessions } from "../db/collection-queries"
import { NewSession, SessionUpdate, writeSessionChanges } from "../db/collection-writes"
import { entityId } from "../lib/entity-id"
import { ProviderClient, ProviderOutcome, SessionAnswer } from "../providers/provider-client"
import { providerFailure } from "../providers/provider-failure"
import { processorContext } from "../providers/session-input"
import { RequestedSession, isAuthorized } from "../rules/session-plan"
import { ResolvedPluginOptions } from "../types/options"
import { Payer } from "../types/payer"
import { AttemptStore } from "./attempt-store"
import { AuthorizationRecorder } from "./authorization-record"
import { CommittedFailure } from "./collection-work"
import { CallSpec, JournaledCalls } from "./journaled-calls"

/** The id a provider gives its own object (a Stripe intent's `pi_…`), when it has one. */
function providerObjectId(data: Record<string, unknown> | null | undefined): unknown {
  return data?.id
}

/** Merges metadata a provider asked for into a customer (core's customerService.update does it). */
export type CustomerMetadataWriter = (tx: EntityManager, customerId: string, metadata: Record<string, unknown>) => Promise<void>

/**
 * What a request does to a collection's sessions, with every provider call
 * journaled: sessions about to be removed are asked about first (nothing the
 * shopper confirmed is removed), new sessions initiated and changed ones
 * updated at their provider before anything is written, then the rows
 * written with the journal's rows committed in the same statement, and the
 * deletes of removed sessions staged in the transaction (made once it has
 * committed; a rollback drops them). A provider's failure ends the request;
 * what it did before is settled afterwards (see finisher.ts).
 */
export class SessionChanges {
  constructor(
    private readonly client: ProviderClient,
    private readonly store: AttemptStore,
    private readonly recorder: AuthorizationRecorder,
    private readonly writeCustomerMetadata: CustomerMetadataWriter,
    private readonly options: ResolvedPluginOptions
  ) {}

  /**
   * Before `sessions` are removed or replaced, their providers are asked
   * whether the shopper confirmed them. An authorization found is recorded
   * (session, payment, the collection's status) and the request is refused
   * with 400, naming the session, once that is committed; a confirmed payment
   * still settling (Stripe `processing`) is refused the same way. A provider
   * that cannot tell ends the request (502/504): nothing is removed blind.
   */
  async askBeforeRemoving(
    tx: EntityManager,
    collection: CollectionRow,
    calls: JournaledCalls,
    sessions: SessionRow[]
  ): Promise<CommittedFailure | undefined> {
    const confirmed: string[] = []
    let recorded = false
    for (const session of sessions.filter((s) => !isAuthorized(s))) {
      const providerId = session.provider_id
      const asked = await calls.call(
        { operation: "status", providerId, sessionId: session.id, amount: session.amount },
        () => this.client.sessionState(providerId, session, tx),
        // Kept: an answer that comes after the request stopped waiting is adopted like an authorize's.
        (status) => ({ status, data: session.data })
      )
      if (asked.outcome.kind !== "ok") {
        throw providerFailure(providerId, "tell the payment's status", asked.outcome, this.options.provider_timeout_ms)
      }
      const holds = asked.outcome.value === "authorized" || asked.outcome.value === "captured"
      if (!holds) {
        // A read: nothing to commit with the rows.
        await this.store.finish(asked.attemptId, "committed", "request")
        if (asked.outcome.value === "processing") {
          confirmed.push(session.id)
        }
        continue
      }
      // The status commits with the authorization it told; when that is not written
      // (no payment data now, or the request fails later), the finisher adopts it.
      const written = await this.recorder.record(tx, collection, calls, session, session.data, [asked.attemptId])
      if (!written.ok) {
        // The authorization stands at the provider: no refusal of the shopper's request.
        const failed: ProviderOutcome<unknown> =
          written.outcome.kind === "refused"
            ? { kind: "error", message: `it authorized the payment but refused its data: ${written.outcome.message}`, latencyMs: written.outcome.latencyMs }
            : written.outcome
        throw providerFailure(providerId, "retrieve the payment", failed, this.options.provider_timeout_ms)
      }
      confirmed.push(session.id)
      recorded = true
    }
    if (!confirmed.length) {
      return undefined
    }
    if (recorded) {
      await this.recorder.saveStatus(tx, collection, await listSessions(tx, collection.id), { upwardOnly: true })
    }
    return new CommittedFailure(
      new MedusaError(
        MedusaError.Types.NOT_ALLOWED,
        `Payment session ${confirmed.join(", ")} was confirmed by the shopper at its payment provider and cannot be removed or replaced`
      )
    )
  }

  async initiate(
    tx: EntityManager,
    collection: CollectionRow,
    calls: JournaledCalls,
    wanted: RequestedSession,
    payer: Payer
  ): Promise<NewSession> {
    // The session's id is chosen first, so its journal row names what a commit would hold.
    const id = entityId("ps")
    const context = processorContext(collection, wanted.amount, payer)
    const { value: answer, attemptId, latencyMs } = await this.callProvider(
      calls,
      {
        operation: "initiate",
        providerId: wanted.provider_id,
        sessionId: id,
        amount: wanted.amount,
        answerWithRows: this.client.hasFinder(wanted.provider_id),
      },
      "initiate the payment",
      () => this.client.initiate(wanted.provider_id, context, tx),
      (value) => value.sessionData ?? {}
    )
    this.sweepForResend(calls, attemptId, wanted.provider_id, answer.sessionData, latencyMs)
    await this.applyCustomerMetadata(tx, payer, answer)
    return { id, provider_id: wanted.provider_id, amount: wanted.amount, data: answer.sessionData ?? {} }
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
    payer: Payer
  ): Promise<{ update: SessionUpdate; replaced: boolean }> {
    const context = processorContext(collection, amount, payer)
    const { value: answer, attemptId, latencyMs } = await this.callProvider(
      calls,
      {
        operation: "update",
        providerId: session.provider_id,
        sessionId: session.id,
        amount,
        answerWithRows: this.client.hasFinder(session.provider_id),
      },
      "update the payment",
      () => this.client.update(session.provider_id, session, context, tx),
      (value) => value.sessionData ?? null
    )
    await this.applyCustomerMetadata(tx, payer, answer)
    const data = answer.sessionData
    const replaced =
      !!data && providerObjectId(data) !== undefined && providerObjectId(data) !== providerObjectId(session.data)
    if (replaced) {
      // Re-created: a create, which the provider's client may have sent twice.
      this.sweepForResend(calls, attemptId, session.provider_id, data, latencyMs)
    }
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
      committed: calls.committedAttempts(),
    })
  }

  /** A create whose client may have sent it twice: the copy nobody answered is looked for once the rows commit. */
  private sweepForResend(
    calls: JournaledCalls,
    attemptId: string,
    providerId: string,
    data: Record<string, unknown> | undefined,
    latencyMs: number
  ): void {
    const window = this.client.resendWindow(providerId, data, latencyMs)
    if (window) {
      calls.sweepForResend(attemptId, window)
    }
  }

  /** What core's processUpdateRequestsData does: the provider's metadata merged into the customer. */
  private async applyCustomerMetadata(tx: EntityManager, payer: Payer, answer: SessionAnswer): Promise<void> {
    if (payer.customer && answer.customerMetadata) {
      await this.writeCustomerMetadata(tx, payer.customer.id, answer.customerMetadata)
    }
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
  ): Promise<{ value: T; attemptId: string; latencyMs: number }> {
    const { outcome, attemptId } = await calls.call(spec, invoke, effectData)
    if (outcome.kind !== "ok") {
      throw providerFailure(spec.providerId, action, outcome, this.options.provider_timeout_ms)
    }
    calls.willCommit(attemptId)
    return { value: outcome.value, attemptId, latencyMs: outcome.latencyMs }
  }
}

