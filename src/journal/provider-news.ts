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
   * `journalAsk` false: a question that finds nothing new is not journaled
   * (the status sync's periodic polls of pending sessions would fill the
   * attempt log with reads); one that finds an authorization or a capture is
   * asked again, journaled, and that answer decides.
   */
  async settle(
    tx: EntityManager,
    collection: CollectionRow,
    calls: JournaledCalls,
    session: SessionRow,
    { journalAsk = true }: { journalAsk?: boolean } = {}
  ): Promise<News> {
    const providerId = session.provider_id
    let outcome = journalAsk ? await this.askJournaled(tx, calls, session) : await this.client.sessionState(providerId, session, tx)
    if (!journalAsk && outcome.kind === "ok" && isNews(outcome.value)) {
      outcome = await this.askJournaled(tx, calls, session)
    }
    if (outcome.kind === "timeout") {
      return { kind: "failed", outcome }
    }
    if (outcome.kind !== "ok") {
      return { kind: "failed", outcome }
    }
    const state = outcome.value
    if (!isNews(state)) {
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

  private async askJournaled(tx: EntityManager, calls: JournaledCalls, session: SessionRow) {
    const asked = await calls.call(
      { operation: "status", providerId: session.provider_id, sessionId: session.id, amount: session.amount },
      () => this.client.sessionState(session.provider_id, session, tx),
      () => null
    )
    if (asked.outcome.kind === "ok") {
      // A read: nothing to commit with the rows.
      await this.store.finish(asked.attemptId, "committed", "request")
    }
    return asked.outcome
  }
}

/** What a provider can say of a session that the database must record. */
function isNews(state: string): boolean {
  return state === "authorized" || state === "captured"
}
