import { CollectionRow } from "../db/collection-queries"
import { ProviderClient, ProviderOutcome, SessionLike } from "../providers/provider-client"
import { EntityManager } from "typeorm"
import { AttemptStore } from "./attempt-store"
import { AttemptRow } from "./attempt-types"
import { HeldAnswers } from "./held-answers"
import { CallOrigin, CallSpec, JournaledCalls } from "./journaled-calls"

type Logger = { info: (m: string) => void; warn: (m: string) => void; error: (m: string) => void }

/** Tries of a finishing step before it is left `unknown`: a refusal is an answer, a failure may pass. */
const MAX_REFUSED_TRIES = 3
const MAX_FAILED_TRIES = 10

export type Failed = Exclude<ProviderOutcome<unknown>, { kind: "ok" }>

export type StepResult<T> = { ok: true; value: T } | { ok: false; outcome: Failed }

/**
 * The provider calls the finisher makes to settle one journal row, each
 * journaled (its own row closed at once: the finisher's calls are themselves
 * repeatable), and what becomes of a step the provider did not confirm.
 */
export class FinishingSteps {
  readonly calls: JournaledCalls

  constructor(
    private readonly row: AttemptRow,
    private readonly deps: { manager: EntityManager; store: AttemptStore; heldAnswers: HeldAnswers; client: ProviderClient; logger: Logger },
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
   * row as `state`. A row that is itself that delete (staged by its request)
   * gets the answer; otherwise the call is one of its own in the journal.
   */
  async removeAtProvider(
    how: "delete" | "cancel",
    state: "undone" | "committed",
    resolvedBy: string,
    data: Record<string, unknown> | null = this.row.provider_data
  ): Promise<void> {
    const { row } = this
    if (!data) {
      await this.deps.store.finish(row.id, "unknown", resolvedBy)
      return
    }
    const session: SessionLike = { id: row.payment_session_id ?? "", provider_id: row.provider_id, data }
    const invoke = () =>
      how === "delete"
        ? this.deps.client.delete(row.provider_id, session, this.deps.manager)
        : this.deps.client.cancel(row.provider_id, session, this.deps.manager)
    if (row.operation === how) {
      const outcome = await this.calls.callStaged(row, invoke)
      if (outcome.kind === "ok") {
        await this.deps.store.finish(row.id, state, resolvedBy)
      } else {
        await this.notYet(outcome, undefined, resolvedBy)
      }
      return
    }
    const result = await this.call(
      { operation: how, providerId: row.provider_id, sessionId: row.payment_session_id, providerData: data },
      invoke
    )
    if (result.ok) {
      await this.deps.store.finish(row.id, state, resolvedBy)
    } else {
      await this.notYet(result.outcome, `the provider did not confirm the ${how}`, resolvedBy)
    }
  }

  /** One journaled call of the finisher, its own row closed at once. */
  async call<T>(spec: CallSpec, invoke: () => Promise<ProviderOutcome<T>>): Promise<StepResult<T>> {
    const { outcome, attemptId } = await this.calls.call(spec, invoke, () => null)
    if (outcome.kind !== "ok") {
      return { ok: false, outcome }
    }
    await this.deps.store.finish(attemptId, "committed", "finisher").catch(() => undefined)
    return { ok: true, value: outcome.value }
  }

  /**
   * A finishing step the provider did not confirm: tried again later, with
   * backoff — or, after too many tries, left `unknown` for a human (the
   * attempt log shows why): a provider that keeps refusing will not change its
   * mind, one that keeps failing may be down for good.
   */
  async notYet(failed: Failed, why: string | undefined, resolvedBy: string): Promise<void> {
    const { row } = this
    const tries = row.recovery_attempts + 1
    const limit = failed.kind === "refused" ? MAX_REFUSED_TRIES : MAX_FAILED_TRIES
    await this.deps.store.retryLater(row.id, why)
    if (tries < limit) {
      return
    }
    await this.deps.store.finish(row.id, "unknown", resolvedBy)
    this.deps.logger.warn(
      `medusa-plugin-payment-collections: gave up finishing attempt ${row.id} (${row.operation} at ${row.provider_id} for payment collection ${row.payment_collection_id}) after ${tries} tries; it is marked unknown: ${failed.kind === "refused" || failed.kind === "error" ? failed.message : "no answer"}`
    )
  }
}
