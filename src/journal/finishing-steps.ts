import { EntityManager } from "typeorm"
import { CollectionRow, namedProviderObjects } from "../db/collection-queries"
import { isLive } from "../providers/finders"
import { ProviderClient, ProviderOutcome, SessionLike } from "../providers/provider-client"
import { ResolvedPluginOptions } from "../types/options"
import { AttemptStore } from "./attempt-store"
import { AttemptRow } from "./attempt-types"
import { HeldAnswers } from "./held-answers"
import { CallOrigin, CallSpec, JournaledCalls } from "./journaled-calls"
import { resendSweepData, resendWindowOf } from "./resend-sweep"

type Logger = { info: (m: string) => void; warn: (m: string) => void; error: (m: string) => void }

/** A row not settled within a day needs a person (it is still retried). */
const ATTENTION_AFTER_MS = 24 * 60 * 60_000
/** Provider and server clocks may disagree: a finder's window starts this much earlier. */
const CLOCK_MARGIN_MS = 60_000

export type Failed = Exclude<ProviderOutcome<unknown>, { kind: "ok" }>

export type StepResult<T> = { ok: true; value: T } | { ok: false; outcome: Failed }

export type StepDeps = {
  manager: EntityManager
  store: AttemptStore
  heldAnswers: HeldAnswers
  client: ProviderClient
  options: ResolvedPluginOptions
  logger: Logger
  /** Tells the host's event bus (once per row) that a row needs a person. */
  announce: (row: AttemptRow, reason: string) => Promise<void>
}

/** What a sweep of the finder came to. */
export type Sweep = "settled" | "not yet" | "no finder"

/**
 * The provider calls the finisher makes to settle one journal row, each
 * journaled (its own row closed at once: the finisher's calls are themselves
 * repeatable), and what becomes of a step the provider did not confirm:
 * tried again later with backoff, never given up.
 */
export class FinishingSteps {
  readonly calls: JournaledCalls

  constructor(
    private readonly row: AttemptRow,
    private readonly deps: StepDeps,
    collection: CollectionRow | null,
    deadline?: number
  ) {
    const origin: CallOrigin = {
      collectionId: row.payment_collection_id,
      currencyCode: collection?.currency_code ?? row.currency_code,
      requestId: row.request_id,
      deadline,
    }
    // A late answer to one of the finisher's own calls needs nothing: the row it
    // finishes stays open, and its next pass repeats the call.
    this.calls = new JournaledCalls(deps.store, deps.heldAnswers, origin, deps.logger, async () => undefined)
  }

  /** The finisher is done with this row: no late answer is waited for. */
  done(): void {
    this.calls.done()
  }

  /**
   * Deletes (or cancels) at the provider what `data` names, then closes the
   * row as `state` (true: closed). A row that is itself that delete (staged
   * by its request) gets the answer; otherwise the call is one of its own in
   * the journal.
   */
  async removeAtProvider(
    how: "delete" | "cancel",
    state: "undone" | "committed",
    resolvedBy: string,
    data: Record<string, unknown> | null = this.row.provider_data
  ): Promise<boolean> {
    const { row } = this
    if (!data) {
      await this.needsAttention(`there is no provider data to ${how} with`)
      return false
    }
    if (row.operation === how) {
      const outcome = await this.calls.callStaged(row, () => this.remove(how, data))
      if (outcome.kind !== "ok") {
        await this.notYet(outcome, undefined)
        return false
      }
      return await this.deps.store.finish(row.id, state, resolvedBy)
    }
    const removed = await this.removeOne(how, data, row.payment_session_id)
    if (!removed.ok) {
      await this.notYet(removed.outcome, `the provider did not confirm the ${how}`)
      return false
    }
    return await this.deps.store.finish(row.id, state, resolvedBy)
  }

  /**
   * A create answered with `data` that the provider's client may have sent
   * twice (ProviderClient.resendWindow): a `find` row looks for the copy.
   * `latencyMs`: how long the call took (by default, the row's call: at most
   * the provider timeout when the journal did not note its answer).
   */
  async sweepForResend(data: Record<string, unknown> | null, latencyMs = this.callLength()): Promise<void> {
    const window = this.deps.client.resendWindow(this.row.provider_id, data, latencyMs)
    if (window) {
      await this.deps.store.addSweep(this.row, resendSweepData(window))
    }
  }

  /** One delete or cancel of the finisher, journaled. */
  async removeOne(how: "delete" | "cancel", data: Record<string, unknown>, sessionId: string | null): Promise<StepResult<true>> {
    const { row } = this
    return await this.call({ operation: how, providerId: row.provider_id, sessionId, providerData: data }, () =>
      this.remove(how, data)
    )
  }

  /**
   * Asks the provider's finder for the collection's sessions created since
   * this row's call began and deletes every live one the database does not
   * name (`locked` null: the collection is gone, so it names none) and no
   * open delete of the journal will remove. Settled
   * once the finder answered a complete list for a window that has been open
   * for `finder_settle_ms` (a call can still create something until its
   * client gives up) — or, for the copy of a resent call, for the window its
   * row names.
   */
  private async sweepOrphans(tx: EntityManager | null, collectionId: string): Promise<Sweep | { ok: false; outcome: Failed }> {
    const { row } = this
    if (!this.deps.client.hasFinder(row.provider_id)) {
      return "no finder"
    }
    const resent = resendWindowOf(row)
    // A resent call's copy is older than the answer that named its window: nothing to wait for.
    const settleUntil = resent ? 0 : row.created_at.getTime() + this.deps.options.finder_settle_ms
    const query = {
      resource_id: collectionId,
      ...(resent ?? {
        created_from: new Date(row.created_at.getTime() - CLOCK_MARGIN_MS),
        created_to: new Date(Math.min(Date.now(), settleUntil)),
      }),
    }
    const found = await this.call({ operation: "find", providerId: row.provider_id }, () =>
      this.deps.client.find(row.provider_id, query)
    )
    if (!found.ok) {
      return { ok: false, outcome: found.outcome }
    }
    const named = tx ? await namedProviderObjects(tx, collectionId) : new Set<string>()
    const removing = await this.deps.store.objectsBeingRemoved(collectionId)
    for (const orphan of found.value.sessions.filter((s) => isLive(s) && !named.has(s.id) && !removing.has(s.id))) {
      const removed = await this.removeOne("delete", orphan.data, null)
      if (!removed.ok) {
        return { ok: false, outcome: removed.outcome }
      }
    }
    return found.value.complete && Date.now() > settleUntil ? "settled" : "not yet"
  }

  /**
   * A call that may have created something whose id the provider never told
   * the plugin: the finder settles it (`tx`: the collection locked, null when
   * it is gone), or a person must (no finder).
   */
  async settleByFinder(tx: EntityManager | null, resolvedBy: string): Promise<void> {
    const { row } = this
    const swept = await this.sweepOrphans(tx, row.payment_collection_id)
    if (swept === "settled") {
      await this.deps.store.finish(row.id, "undone", resolvedBy)
    } else if (swept === "not yet") {
      await this.sweepAgainLater()
    } else if (swept === "no finder") {
      await this.needsAttention(
        `payment provider ${row.provider_id} may hold a session of this collection that the database does not name, and it has no finder to ask`
      )
    } else {
      await this.notYet(swept.outcome, "the provider's finder did not answer")
    }
  }

  /** After a sweep that could not conclude yet: the next try once the window may have settled. */
  private async sweepAgainLater(): Promise<void> {
    const settleAt = new Date(this.row.created_at.getTime() + this.deps.options.finder_settle_ms)
    await this.deps.store.retryLater(this.row.id, undefined, settleAt)
  }

  private callLength(): number {
    const { row } = this
    return row.answered_at ? row.answered_at.getTime() - row.created_at.getTime() : this.deps.options.provider_timeout_ms
  }

  /**
   * One journaled call of the finisher, its own row closed at once: when it
   * failed, the row it settles stays open and makes the call again.
   */
  async call<T>(spec: CallSpec, invoke: () => Promise<ProviderOutcome<T>>): Promise<StepResult<T>> {
    const { outcome, attemptId } = await this.calls.call(spec, invoke, () => null)
    const closed = outcome.kind === "ok" ? "committed" : "failed"
    await this.deps.store.finish(attemptId, closed, "finisher").catch(() => undefined)
    return outcome.kind === "ok" ? { ok: true, value: outcome.value } : { ok: false, outcome }
  }

  /**
   * A settling step the provider did not confirm: tried again later, backing
   * off to an hour at the most, for as long as it takes; after a day it also
   * needs a person (the attempt log and an event say so).
   */
  async notYet(failed: Failed, why: string | undefined): Promise<void> {
    const { row } = this
    const reason = `${why ?? `the ${row.operation} is not done yet`}: ${failed.kind === "timeout" ? "no answer" : failed.message}`
    await this.deps.store.retryLater(row.id, reason)
    if (Date.now() - row.created_at.getTime() > ATTENTION_AFTER_MS) {
      await this.needsAttention(`not settled for over a day; still retried (${reason})`, { retry: false })
    }
  }

  /**
   * The row needs a person: flagged `needs_attention` (never pruned while
   * open), announced once, and still retried with backoff.
   */
  async needsAttention(reason: string, { retry = true }: { retry?: boolean } = {}): Promise<void> {
    const { row } = this
    if (retry) {
      await this.deps.store.retryLater(row.id, reason)
    }
    if (await this.deps.store.flagForAttention(row.id, reason)) {
      this.deps.logger.warn(
        `medusa-plugin-payment-collections: attempt ${row.id} (${row.operation} at ${row.provider_id} for payment collection ${row.payment_collection_id}) needs attention: ${reason}`
      )
      await this.deps.announce(row, reason)
    }
  }

  private remove(how: "delete" | "cancel", data: Record<string, unknown>) {
    const { row } = this
    const session: SessionLike = { id: row.payment_session_id ?? "", provider_id: row.provider_id, data }
    return how === "delete"
      ? this.deps.client.delete(row.provider_id, session, this.deps.manager)
      : this.deps.client.cancel(row.provider_id, session, this.deps.manager)
  }
}
