import { EntityManager } from "typeorm"
import { CollectionRow, SessionRow, saveAuthorizationStatus } from "../db/collection-queries"
import { writeAuthorization } from "../db/collection-writes"
import { RowDecoder } from "../db/row-shapes"
import { entityId } from "../lib/entity-id"
import { ProviderClient, ProviderOutcome } from "../providers/provider-client"
import { authorizationStatusOf, authorizedPaymentAmount, raisedStatus } from "../rules/collection-status"
import { JournaledCalls } from "./journaled-calls"

type Failed = Exclude<ProviderOutcome<unknown>, { kind: "ok" }>

export type RecordedAuthorization =
  | { ok: true; session: SessionRow; paymentId: string }
  /** The provider would not give the payment's data: nothing was written. */
  | { ok: false; outcome: Failed }

/** Tells the host's event bus that a collection's authorizations changed (in the transaction). */
export type AuthorizedEmitter = (tx: EntityManager, collectionId: string) => Promise<void>

/**
 * How an authorization a provider reported is written — by the request that
 * asked for it and, when that request could not, by the finisher (adopted):
 * the payment's data is asked of the provider (core's createPayment does the
 * same), then the session, its payment and the join row are written, and the
 * collection's status and authorized amount follow from its sessions.
 */
export class AuthorizationRecorder {
  constructor(
    private readonly client: ProviderClient,
    private readonly decoder: RowDecoder,
    private readonly emitAuthorized: AuthorizedEmitter
  ) {}

  /**
   * Records `session` as authorized with the provider's `data`. The journal
   * rows in `committedAttemptIds` (the authorize call) and the retrieve call
   * made here commit with the rows.
   */
  async record(
    tx: EntityManager,
    collection: CollectionRow,
    calls: JournaledCalls,
    session: SessionRow,
    data: Record<string, unknown>,
    committedAttemptIds: string[]
  ): Promise<RecordedAuthorization> {
    const providerId = session.provider_id
    // The session as core hands it over after saving the authorization.
    const now = new Date()
    const authorizedSession = { ...session, data, status: "authorized", payment_authorized_at: now, updated_at: now }
    const retrieved = await calls.call(
      { operation: "retrieve", providerId, sessionId: session.id, amount: session.amount, answerWithRows: true },
      () => this.client.paymentData(providerId, authorizedSession, tx),
      () => null
    )
    if (retrieved.outcome.kind !== "ok") {
      return { ok: false, outcome: retrieved.outcome }
    }
    for (const id of [...committedAttemptIds, retrieved.attemptId]) {
      calls.willCommit(id)
    }
    const paymentId = entityId("pay")
    const amount = authorizedPaymentAmount(session.amount ?? 0, { ...data, ...retrieved.outcome.value })
    const written = await writeAuthorization(tx, collection.id, {
      sessionId: session.id,
      status: "authorized",
      data,
      // The provider authorized less than the session asked (its amount changed
      // under a call that failed): the session is worth what was authorized.
      amount: amount < (session.amount ?? 0) ? amount : undefined,
      payment: {
        id: paymentId,
        amount,
        currency_code: collection.currency_code,
        provider_id: providerId,
        data: retrieved.outcome.value,
      },
      committed: calls.committedAttempts([...committedAttemptIds, retrieved.attemptId]),
    })
    return { ok: true, session: written, paymentId }
  }

  /**
   * Saves the collection's status and authorized amount as its `sessions` now
   * add up (`upwardOnly`: never below what it had), tells the event bus
   * (unless `emit` is false: core emits nothing for a collection with nothing
   * to pay), and answers the collection with its payments.
   */
  async saveStatus(
    tx: EntityManager,
    collection: CollectionRow,
    sessions: SessionRow[],
    { emit = true, upwardOnly = false }: { emit?: boolean; upwardOnly?: boolean } = {}
  ): Promise<{ collection: CollectionRow; payments: Record<string, unknown>[] }> {
    const computed = authorizationStatusOf(collection, sessions)
    const change = upwardOnly ? raisedStatus(collection, computed) : computed
    const saved = await saveAuthorizationStatus(tx, this.decoder, collection.id, change)
    if (emit) {
      await this.emitAuthorized(tx, collection.id)
    }
    return saved
  }

  /** The collection and its payments as they are (nothing changed). */
  async read(tx: EntityManager, collection: CollectionRow): Promise<{ collection: CollectionRow; payments: Record<string, unknown>[] }> {
    return await saveAuthorizationStatus(tx, this.decoder, collection.id, null)
  }
}
