import { EntityManager } from "typeorm"
import { CollectionLock, InQueue } from "../db/collection-lock"
import { payerOf } from "../db/collection-payer"
import { CollectionRow, SessionRow, listSessions } from "../db/collection-queries"
import { canonicalJson } from "../lib/canonical-json"
import { processorContext } from "../providers/session-input"
import { isAuthorized } from "../rules/session-plan"
import { AttemptRow } from "./attempt-types"
import { AuthorizationRecorder } from "./authorization-record"
import { FinishingSteps, StepDeps } from "./finishing-steps"
import { LateAnswer } from "./journaled-calls"


/** The collection a row is finished under, locked; null when the collection is gone. */
export type Locked = { tx: EntityManager; collection: CollectionRow } | null

export type FinisherDeps = StepDeps & {
  recorder: AuthorizationRecorder
  lock: CollectionLock
}

/**
 * The rules for provider calls whose request did not get them into the
 * database, in one place: the request itself right after it ends
 * (`finishForRequest`), a call that answered after its request stopped
 * waiting (`finishLate`), a request that finds an unsettled call on a session
 * it is about to use, and — for a request whose process died or a provider
 * that did not answer — the reconciler's sweep (`finishRows`).
 *
 * Every row is settled under the collection's lock: holding it proves that no
 * request is mid-way on the collection in any process. A call that answered is
 * settled by its answer; one whose outcome is uncertain (it threw, timed out,
 * lost its connection, or its process died mid-call) by asking the provider.
 * The rules, by call:
 * - initiate, answered: the session was never committed → deleted at its
 *   provider (`undone`); where the provider's client may send a create twice
 *   on its own (Stripe), a `find` row looks for the copy (resend-sweep.ts),
 *   as one does for every committed create there. Uncertain: the provider's finder lists the
 *   collection's sessions since the call began, and every live one the
 *   database does not name is deleted (`undone` once the window has settled);
 *   a provider without a finder → `needs_attention`.
 * - update: the provider is set back to the database's amount by sending the
 *   update again (a new object it answers with — Stripe re-creates intents —
 *   is deleted); uncertain, the finder also sweeps what the lost call may
 *   have created → `undone`. A set-back refused because the shopper has
 *   confirmed the payment meanwhile: its authorization is adopted.
 * - authorize: answered, or asked when uncertain: an authorization is recorded,
 *   never voided, while its session is part of the collection (`adopted`); one
 *   whose session left the collection is canceled (`undone`). The status asked
 *   before a removal that answered `authorized` too late for its request is
 *   adopted the same way.
 * - delete and cancel (of removed sessions, staged in the request's
 *   transaction): repeated until the provider confirms → `committed`.
 * - reads: nothing to settle → `undone`.
 * A step that fails is retried with backoff (at most an hour) for as long as
 * it takes; a row not settled within a day also needs a person.
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
          return stored.state === "started" && seen.state !== "started"
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

  /**
   * The deletes a committed request staged (of sessions it removed): made
   * without the collection's lock, which they do not need (no session of the
   * collection names them any more). Failures are retried by the reconciler.
   */
  async finishStaged(rows: AttemptRow[], deadline: number): Promise<void> {
    if (!rows.length) {
      return
    }
    try {
      await this.finishRows(rows, null, "request", deadline)
    } catch (err) {
      this.deps.logger.warn(
        `medusa-plugin-payment-collections: could not make ${rows.length} staged delete(s) now (${(err as Error).message}); the reconciler will`
      )
    }
  }

  /** A provider answered after its request stopped waiting: finish it like its request would have. */
  async finishLate({ row }: LateAnswer): Promise<void> {
    if (row.state !== "answered" && row.state !== "uncertain") {
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
    if (row.state === "started" && this.deps.heldAnswers.holds(row.id)) {
      // Not a call that died in flight: this process knows its answer and will journal it.
      throw new Error("this process holds the provider's answer and could not journal it yet")
    }
    switch (row.operation) {
      case "initiate":
        if (row.state === "answered" && row.provider_data) {
          if (await steps.removeAtProvider("delete", "undone", resolvedBy)) {
            await steps.sweepForResend(row.provider_data)
          }
          return
        }
        return await steps.settleByFinder(locked?.tx ?? null, resolvedBy)
      case "delete":
        await steps.removeAtProvider("delete", "committed", resolvedBy)
        return
      case "cancel":
        await steps.removeAtProvider("cancel", "committed", resolvedBy)
        return
      case "find":
        return await steps.settleByFinder(locked?.tx ?? null, resolvedBy)
      case "update":
        return await this.setBackUpdate(row, locked, steps, resolvedBy)
      case "authorize":
        return await this.finishAuthorization(row, locked, steps, resolvedBy)
      case "status":
        // The status asked before a removal: a late answer that the shopper confirmed is an authorization told.
        if (row.state === "answered" && (row.provider_data as { status?: unknown } | null)?.status === "authorized") {
          return await this.finishAuthorization(row, locked, steps, resolvedBy)
        }
        await this.deps.store.finish(row.id, "undone", resolvedBy)
        return
      default:
        await this.deps.store.finish(row.id, "undone", resolvedBy)
    }
  }

  /**
   * An update that did not commit, or whose outcome is unknown: the provider
   * goes back to what the database holds, by sending the update again (it is
   * idempotent); what the lost call may have created is swept by the finder.
   */
  private async setBackUpdate(row: AttemptRow, locked: Locked, steps: FinishingSteps, resolvedBy: string): Promise<void> {
    const session = locked && (await this.sessionOf(locked, row.payment_session_id))
    const uncertain = row.state !== "answered"
    const answeredId = (row.provider_data as { id?: unknown } | null)?.id
    if (!uncertain && session && typeof answeredId === "string" && answeredId !== session.data.id) {
      // The provider answered the update with a new object (Stripe re-initiates when the
      // customer differs): the database still names the old one, so the new one goes.
      if (await steps.removeAtProvider("delete", "undone", resolvedBy)) {
        await steps.sweepForResend(row.provider_data)
      }
      return
    }
    if (session && !isAuthorized(session)) {
      const { tx, collection } = locked!
      const payer = await payerOf(tx, collection.id)
      const context = processorContext(collection, session.amount ?? collection.amount, payer)
      const result = await steps.call(
        { operation: "update", providerId: session.provider_id, sessionId: session.id, amount: session.amount },
        () => this.deps.client.update(session.provider_id, session, context, tx)
      )
      if (!result.ok) {
        if (result.outcome.kind === "refused" && (await this.adoptConfirmed(locked!, session, steps, row, resolvedBy))) {
          return
        }
        await steps.notYet(result.outcome, "the provider did not confirm setting the payment back")
        return
      }
      const answered = result.value.sessionData
      if (answered?.id !== undefined && answered.id !== session.data.id) {
        // Setting back re-created it: the database keeps naming the object it holds.
        await steps.sweepForResend(answered, this.deps.options.provider_timeout_ms)
        const removed = await steps.removeOne("delete", answered, session.id)
        if (!removed.ok) {
          await steps.notYet(removed.outcome, "the provider did not delete the object the set-back re-created")
          return
        }
      } else if (answered && canonicalJson(answered) !== canonicalJson(session.data)) {
        // Only what the provider changed is written: a set-back that lands where the
        // database already is leaves the row as the request that failed found it.
        await tx.query(`UPDATE payment_session SET data = $2, updated_at = now() WHERE id = $1`, [
          session.id,
          JSON.stringify(answered),
        ])
      }
    }
    await this.sweepAfterUncertainUpdate(row, uncertain)
    await this.deps.store.finish(row.id, "undone", resolvedBy, locked?.tx)
  }

  private async sweepAfterUncertainUpdate(row: AttemptRow, uncertain: boolean): Promise<void> {
    if (uncertain && this.deps.client.hasFinder(row.provider_id)) {
      // What the lost call may have created (Stripe re-creates intents) is swept
      // by a row of its own: the session itself is settled now.
      await this.deps.store.addSweep(row)
    }
  }

  /**
   * A set-back the provider refused: it refuses to change a payment the
   * shopper has confirmed, which no update can change any more. Asked, an
   * authorization is adopted (for what the provider authorized) and the
   * update settled with it; true when the row was dealt with.
   */
  private async adoptConfirmed(
    locked: NonNullable<Locked>,
    session: SessionRow,
    steps: FinishingSteps,
    row: AttemptRow,
    resolvedBy: string
  ): Promise<boolean> {
    const asked = await steps.call({ operation: "status", providerId: session.provider_id, sessionId: session.id }, () =>
      this.deps.client.status(session.provider_id, session, this.deps.manager)
    )
    if (!asked.ok || asked.value !== "authorized") {
      return false
    }
    if (await this.adopt(locked, session, session.data, steps, row, resolvedBy)) {
      await this.sweepAfterUncertainUpdate(row, row.state !== "answered")
    }
    return true
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
        await steps.notYet(asked.outcome, "the provider did not tell the session's status")
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
      await steps.removeAtProvider("cancel", "undone", resolvedBy, data ?? null)
      return
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
  ): Promise<boolean> {
    const { tx, collection } = locked
    const recorded = await this.deps.recorder.record(tx, collection, steps.calls, session, data, [])
    if (!recorded.ok) {
      await steps.notYet(recorded.outcome, "the provider did not give the payment's data")
      return false
    }
    // Only ever upward: an admin's `authorized` is never taken back by a late authorization.
    await this.deps.recorder.saveStatus(tx, collection, await listSessions(tx, collection.id), { upwardOnly: true })
    await this.deps.store.finish(row.id, "adopted", resolvedBy, tx)
    this.deps.logger.info(
      `medusa-plugin-payment-collections: recorded the authorization of payment session ${session.id} that its request could not record (attempt ${row.id})`
    )
    return true
  }

  private async sessionOf(locked: NonNullable<Locked>, sessionId: string | null): Promise<SessionRow | undefined> {
    if (!sessionId) {
      return undefined
    }
    const sessions = await listSessions(locked.tx, locked.collection.id)
    return sessions.find((s) => s.id === sessionId)
  }
}
