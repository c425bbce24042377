import { EntityManager } from "typeorm"
import { CollectionLock, InQueue } from "../db/collection-lock"
import { CollectionRow, SessionRow, listSessions } from "../db/collection-queries"
import { canonicalJson } from "../lib/canonical-json"
import { ProviderClient } from "../providers/provider-client"
import { processorContext } from "../providers/session-input"
import { isAuthorized } from "../rules/session-plan"
import { AttemptStore } from "./attempt-store"
import { AttemptRow } from "./attempt-types"
import { AuthorizationRecorder } from "./authorization-record"
import { FinishingSteps } from "./finishing-steps"
import { HeldAnswers } from "./held-answers"
import { LateAnswer } from "./journaled-calls"

type Logger = { info: (m: string) => void; warn: (m: string) => void; error: (m: string) => void }

/** The collection a row is finished under, locked; null when the collection is gone. */
export type Locked = { tx: EntityManager; collection: CollectionRow } | null

export type FinisherDeps = {
  /** The host's manager, for legacy payment services' calls outside a transaction. */
  manager: EntityManager
  store: AttemptStore
  heldAnswers: HeldAnswers
  client: ProviderClient
  recorder: AuthorizationRecorder
  lock: CollectionLock
  logger: Logger
}

/**
 * The rules for provider calls whose request did not get them into the
 * database, in one place: the request itself right after it ends
 * (`finishForRequest`), a call that answered after its request stopped
 * waiting (`finishLate`), and — for a request whose process died — the
 * reconciler's sweep (`finishRows`).
 *
 * Every row is finished under the collection's lock: holding it proves that no
 * request is mid-way on the collection in any process. The rules, by call:
 * - initiate: the session was never committed → deleted at its provider
 *   (`undone`); died while the call was in flight → `unknown` (no id to delete);
 * - update: the provider is set back to the database's amount and data (or, if
 *   the provider answered with a new object, that object is deleted) → `undone`;
 * - authorize: an authorization the provider reports is recorded, never voided,
 *   while its session is part of the collection (`adopted`); one whose session
 *   left the collection is canceled (`undone`); no authorization → `undone`;
 * - delete (of a removed session, staged in the request's transaction):
 *   repeated until the provider confirms → `committed`;
 * - reads: nothing to finish → `undone`.
 * A step that fails is retried later with backoff.
 */
export class Finisher {
  constructor(private readonly deps: FinisherDeps) {}

  /**
   * Right after a request ended (still in its turn of the collection's queue):
   * the rows it did not commit. Failures are logged; the rows stay open and
   * the reconciler finishes them after their lease.
   */
  async finishForRequest(inQueue: InQueue, collectionId: string, rows: AttemptRow[], deadline?: number): Promise<void> {
    if (!rows.length) {
      return
    }
    try {
      await inQueue.locked(async (tx, collection) => {
        // Only what is still open: a transaction that did commit marked its rows.
        const known = new Map(rows.map((row) => [row.id, row]))
        const open = (await this.deps.store.rows([...known.keys()])).map((stored) => {
          const seen = known.get(stored.id)!
          // The journal may have missed the answer (its write failed); the request saw it.
          return stored.state === "started" && seen.state === "answered"
            ? { ...stored, state: seen.state, provider_data: seen.provider_data ?? stored.provider_data }
            : stored
        })
        await this.finishRows(open, { tx, collection }, "request", deadline)
      })
    } catch (err) {
      this.deps.logger.warn(
        `medusa-plugin-payment-collections: could not finish ${rows.length} provider call(s) of payment collection ${collectionId} now (${(err as Error).message}); the reconciler will`
      )
    }
  }

  /** A provider answered after its request stopped waiting: finish it like its request would have. */
  async finishLate({ row }: LateAnswer): Promise<void> {
    if (row.state !== "answered") {
      return
    }
    try {
      await this.deps.lock.run(row.payment_collection_id, (inQueue) =>
        inQueue.locked((tx, collection) => this.finishRows([row], { tx, collection }, "late-answer"))
      )
    } catch (err) {
      this.deps.logger.warn(
        `medusa-plugin-payment-collections: could not finish the late answer of attempt ${row.id} now (${(err as Error).message}); the reconciler will`
      )
    }
  }

  /** Finishes `rows` one after the other; a failed step is retried later. */
  async finishRows(rows: AttemptRow[], locked: Locked, resolvedBy: string, deadline?: number): Promise<void> {
    for (const row of rows) {
      const steps = new FinishingSteps(row, this.deps, locked?.collection ?? null, deadline)
      try {
        await this.finishRow(row, locked, steps, resolvedBy)
      } catch (err) {
        await this.deps.store.retryLater(row.id, (err as Error).message).catch(() => undefined)
        if (locked) {
          // The locked transaction may be unusable now: stop here, the rest waits for the next pass.
          throw err
        }
      } finally {
        steps.done()
      }
    }
  }

  private async finishRow(row: AttemptRow, locked: Locked, steps: FinishingSteps, resolvedBy: string): Promise<void> {
    switch (row.operation) {
      case "initiate":
        if (row.state === "started" || !row.provider_data) {
          return await this.markUndecidable(row, resolvedBy)
        }
        return await steps.removeAtProvider("delete", "undone", resolvedBy)
      case "delete":
        return await steps.removeAtProvider("delete", "committed", resolvedBy)
      case "cancel":
        return await steps.removeAtProvider("cancel", "committed", resolvedBy)
      case "update":
        return await this.setBackUpdate(row, locked, steps, resolvedBy)
      case "authorize":
        return await this.finishAuthorization(row, locked, steps, resolvedBy)
      default:
        await this.deps.store.finish(row.id, "undone", resolvedBy)
    }
  }

  /**
   * An initiate whose process died while the provider was creating something
   * whose id it never told us — unless the answer is only late to reach the
   * journal.
   */
  private async markUndecidable(row: AttemptRow, resolvedBy: string): Promise<void> {
    if (row.state === "started" && this.deps.heldAnswers.holds(row.id)) {
      throw new Error("this process holds the provider's answer and could not journal it yet")
    }
    const marked =
      row.state === "started"
        ? await this.deps.store.markUnanswered(row.id, resolvedBy)
        : await this.deps.store.finish(row.id, "unknown", resolvedBy)
    if (!marked) {
      throw new Error("the provider's answer reached the journal meanwhile; the next pass finishes it")
    }
    this.deps.logger.warn(
      `medusa-plugin-payment-collections: attempt ${row.id} (initiate at ${row.provider_id} for payment collection ${row.payment_collection_id}) cannot be decided: the provider never answered; marked unknown`
    )
  }

  /** An update that did not commit: the provider goes back to what the database holds. */
  private async setBackUpdate(row: AttemptRow, locked: Locked, steps: FinishingSteps, resolvedBy: string): Promise<void> {
    const session = locked && (await this.sessionOf(locked, row.payment_session_id))
    const answeredId = (row.provider_data as { id?: unknown } | null)?.id
    if (session && typeof answeredId === "string" && answeredId !== (session.data as { id?: unknown }).id) {
      // The provider answered the update with a new object (Stripe re-initiates when the
      // customer differs): the database still names the old one, so the new one goes.
      return await steps.removeAtProvider("delete", "undone", resolvedBy)
    }
    if (!session || isAuthorized(session)) {
      await this.deps.store.finish(row.id, "undone", resolvedBy)
      return
    }
    const { tx, collection } = locked!
    const context = processorContext(collection, session.amount ?? collection.amount, null)
    const result = await steps.call(
      { operation: "update", providerId: session.provider_id, sessionId: session.id, amount: session.amount },
      () => this.deps.client.update(session.provider_id, session, context, tx)
    )
    if (!result.ok) {
      await steps.notYet(result.outcome, "the provider did not confirm setting the payment back", resolvedBy)
      return
    }
    const answered = result.value.sessionData
    if (answered && canonicalJson(answered) !== canonicalJson(session.data)) {
      // Only what the provider changed is written: a set-back that lands where the
      // database already is leaves the row as the request that failed found it.
      await tx.query(`UPDATE payment_session SET data = $2, updated_at = now() WHERE id = $1`, [
        session.id,
        JSON.stringify(answered),
      ])
    }
    await this.deps.store.finish(row.id, "undone", resolvedBy, tx)
  }

  /**
   * An authorization whose request did not record it. What the provider says
   * decides: authorized → recorded (adopted), never voided while its session is
   * part of the collection.
   */
  private async finishAuthorization(row: AttemptRow, locked: Locked, steps: FinishingSteps, resolvedBy: string): Promise<void> {
    const answered = row.state === "answered" ? (row.provider_data as { status?: string; data?: Record<string, unknown> } | null) : null
    const session = locked && (await this.sessionOf(locked, row.payment_session_id))
    let status = answered?.status
    let data = answered?.data ?? session?.data
    if (!answered) {
      if (!session) {
        // Died mid-call, and the session is gone: nothing of ours to ask about.
        await this.deps.store.finish(row.id, "undone", resolvedBy)
        return
      }
      const asked = await steps.call({ operation: "status", providerId: session.provider_id, sessionId: session.id }, () =>
        this.deps.client.status(session.provider_id, session, this.deps.manager)
      )
      if (!asked.ok) {
        await steps.notYet(asked.outcome, "the provider did not tell the session's status", resolvedBy)
        return
      }
      status = asked.value
      data = session.data
    }
    if (status !== "authorized") {
      await this.deps.store.finish(row.id, "undone", resolvedBy)
      return
    }
    if (!session) {
      // Its session left the collection: nothing will ever capture this hold.
      return await steps.removeAtProvider("cancel", "undone", resolvedBy, data ?? null)
    }
    if (isAuthorized(session)) {
      // A retry has recorded this very authorization already.
      await this.deps.store.finish(row.id, "adopted", resolvedBy)
      return
    }
    await this.adopt(locked!, session, data ?? session.data, steps, row, resolvedBy)
  }

  private async adopt(
    locked: NonNullable<Locked>,
    session: SessionRow,
    data: Record<string, unknown>,
    steps: FinishingSteps,
    row: AttemptRow,
    resolvedBy: string
  ): Promise<void> {
    const { tx, collection } = locked
    const recorded = await this.deps.recorder.record(tx, collection, steps.calls, session, data, [])
    if (!recorded.ok) {
      await steps.notYet(recorded.outcome, "the provider did not give the payment's data", resolvedBy)
      return
    }
    await this.deps.recorder.saveStatus(tx, collection, await listSessions(tx, collection.id))
    await this.deps.store.finish(row.id, "adopted", resolvedBy, tx)
    this.deps.logger.info(
      `medusa-plugin-payment-collections: recorded the authorization of payment session ${session.id} that its request could not record (attempt ${row.id})`
    )
  }

  private async sessionOf(locked: NonNullable<Locked>, sessionId: string | null): Promise<SessionRow | undefined> {
    if (!sessionId) {
      return undefined
    }
    const sessions = await listSessions(locked.tx, locked.collection.id)
    return sessions.find((s) => s.id === sessionId)
  }
}
