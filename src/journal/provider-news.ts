import { EntityManager } from "typeorm"
import { markPaymentCaptured, paymentOfProviderObject } from "../db/collection-payments"
import { CollectionRow, SessionRow, listSessions } from "../db/collection-queries"
import { ProviderClient } from "../providers/provider-client"
import { isAuthorized } from "../rules/session-plan"
import { AttemptStore } from "./attempt-store"
import { AuthorizationRecorder } from "./authorization-record"
import { Failed } from "./finishing-steps"
import { JournaledCalls } from "./journaled-calls"

export type News =
  /** The provider holds an authorization the database did not: recorded (adopted). */
  | { kind: "adopted"; collection: CollectionRow }
  /** The provider took the money (a capture made there): recorded on the payment. */
  | { kind: "captured" }
  | { kind: "unchanged"; state: string }
  | { kind: "failed"; outcome: Failed }

/**
 * A session settled by what its provider says now — how the plugin learns of
 * what happened outside any request of its own: a webhook (the shopper who
 * confirmed and closed the tab), the status sync for missed events. The
 * provider's answer decides, never an event's copy of it: providers deliver at
 * least once and out of order. Runs under the collection's lock; each call is
 * journaled.
 */
export class ProviderNews {
  constructor(
    private readonly client: ProviderClient,
    private readonly store: AttemptStore,
    private readonly recorder: AuthorizationRecorder
  ) {}

  /**
   * `journalAsk` false: the question itself is not journaled (the status
   * sync's periodic polls of pending sessions would fill the attempt log with
   * reads); what it leads to is.
   */
  async settle(
    tx: EntityManager,
    collection: CollectionRow,
    calls: JournaledCalls,
    session: SessionRow,
    { journalAsk = true }: { journalAsk?: boolean } = {}
  ): Promise<News> {
    const providerId = session.provider_id
    const ask = () => this.client.sessionState(providerId, session, tx)
    let outcome
    if (journalAsk) {
      const asked = await calls.call({ operation: "status", providerId, sessionId: session.id, amount: session.amount }, ask, () => null)
      outcome = asked.outcome
      if (outcome.kind === "ok") {
        // A read: nothing to commit with the rows.
        await this.store.finish(asked.attemptId, "committed", "request")
      }
    } else {
      outcome = await ask()
    }
    if (outcome.kind === "timeout") {
      return { kind: "failed", outcome }
    }
    if (outcome.kind !== "ok") {
      return { kind: "failed", outcome }
    }
    const state = outcome.value
    if (state !== "authorized" && state !== "captured") {
      return { kind: "unchanged", state }
    }
    let news: News = { kind: "unchanged", state }
    if (!isAuthorized(session)) {
      const recorded = await this.recorder.record(tx, collection, calls, session, session.data, [])
      if (!recorded.ok) {
        return { kind: "failed", outcome: recorded.outcome }
      }
      const saved = await this.recorder.saveStatus(tx, collection, await listSessions(tx, collection.id), { upwardOnly: true })
      news = { kind: "adopted", collection: saved.collection }
    }
    if (state === "captured") {
      const payment = await paymentOfProviderObject(tx, collection.id, String(session.data.id))
      if (payment && !payment.captured_at) {
        const retrieved = await calls.call(
          { operation: "retrieve", providerId, sessionId: session.id, amount: session.amount },
          () => this.client.paymentData(providerId, { ...session, data: payment.data }, tx),
          () => null
        )
        if (retrieved.outcome.kind === "ok") {
          await this.store.finish(retrieved.attemptId, "committed", "request")
        }
        const data = retrieved.outcome.kind === "ok" ? retrieved.outcome.value : payment.data
        if ((await markPaymentCaptured(tx, payment.id, data)) && news.kind === "unchanged") {
          news = { kind: "captured" }
        }
      }
    }
    return news
  }
}
