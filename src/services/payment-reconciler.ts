import { EventBusService, PaymentProviderService } from "@medusajs/medusa"
import { EntityManager } from "typeorm"
import { canonicalJson } from "../lib/canonical-json"
import { CollectionLock, InQueue } from "../lib/collection-lock"
import { CollectionRow, SessionRow, listSessions } from "../lib/collection-queries"
import { saveCollectionStatus, writeAuthorization } from "../lib/collection-writes"
import { entityId } from "../lib/entity-id"
import { CallOrigin, CallSpec, LateAnswer, ProviderCalls, holdsAnswer, writeHeldAnswers } from "../lib/provider-calls"
import { ProviderClient, ProviderOutcome, SessionLike } from "../lib/provider-client"
import { isAuthorized, statusForAuthorizedAmount } from "../lib/session-plan"
import { processorContext } from "../lib/session-input"
import { PluginOptions, ResolvedPluginOptions, resolveOptions } from "../types/options"
import type PaymentAttemptsService from "./payment-attempts"
import { AttemptRow, PROCESS_ID } from "./payment-attempts"

type InjectedDependencies = {
  manager: EntityManager
  paymentProviderService: PaymentProviderService
  paymentAttemptsService: PaymentAttemptsService
  eventBusService: EventBusService
  logger: { info: (m: string) => void; warn: (m: string) => void; error: (m: string) => void }
}

export const PAYMENT_AUTHORIZED_EVENT = "payment-collection.payment_authorized"

/** Collections one sweep looks at. */
const SWEEP_BATCH = 50
/** Tries of a finishing step before it is left `unknown`: a refusal is an answer, a failure may pass. */
const MAX_REFUSED_TRIES = 3
const MAX_FAILED_TRIES = 10

type Failed = Exclude<ProviderOutcome<unknown>, { kind: "ok" }>

export type SweepSummary = { collections: number; finished: number; skipped: number }

type Locked = { tx: EntityManager; collection: CollectionRow } | null

/**
 * Finishes provider calls whose request did not get them into the database:
 * the request itself right after it ends (`finishForRequest`), a call that
 * answered after its request stopped waiting (`finishLate`), and — for a
 * request whose process died — the reconciler's sweep, on boot and every
 * `reconcile_interval_ms` in every process.
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
export default class PaymentReconcilerService {
  static LIFE_TIME = "SINGLETON"

  protected readonly manager_: EntityManager
  protected readonly attempts_: PaymentAttemptsService
  protected readonly eventBus_: EventBusService
  protected readonly logger_: InjectedDependencies["logger"]
  protected readonly options_: ResolvedPluginOptions
  protected readonly client_: ProviderClient
  protected readonly lock_: CollectionLock
  private sweeping_: Promise<SweepSummary> | undefined

  constructor(container: InjectedDependencies, options?: PluginOptions) {
    this.manager_ = container.manager
    this.attempts_ = container.paymentAttemptsService
    this.eventBus_ = container.eventBusService
    this.logger_ = container.logger
    this.options_ = resolveOptions(options)
    this.client_ = new ProviderClient(container.paymentProviderService, this.options_.provider_timeout_ms)
    this.lock_ = new CollectionLock(this.manager_, this.options_.lock_timeout_ms)
  }

  /**
   * Right after a request ended (still in its turn of the collection's queue):
   * the rows it did not commit. Failures are logged; the rows stay open and
   * the reconciler finishes them after their lease.
   */
  async finishForRequest(
    inQueue: InQueue,
    collectionId: string,
    rows: AttemptRow[],
    deadline?: number
  ): Promise<void> {
    if (!rows.length) {
      return
    }
    try {
      await inQueue.locked(async (tx, collection) => {
        // Only what is still open: a transaction that did commit marked its rows.
        const known = new Map(rows.map((row) => [row.id, row]))
        const open = (await this.attempts_.rows([...known.keys()])).map((stored) => {
          const seen = known.get(stored.id)!
          // The journal may have missed the answer (its write failed); the request saw it.
          return stored.state === "started" && seen.state === "answered"
            ? { ...stored, state: seen.state, provider_data: seen.provider_data ?? stored.provider_data }
            : stored
        })
        await this.finishRows(open, { tx, collection }, "request", deadline)
      })
    } catch (err) {
      this.logger_.warn(
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
      await this.lock_.run(row.payment_collection_id, (inQueue) =>
        inQueue.locked((tx, collection) => this.finishRows([row], { tx, collection }, "late-answer"))
      )
    } catch (err) {
      this.logger_.warn(
        `medusa-plugin-payment-collections: could not finish the late answer of attempt ${row.id} now (${(err as Error).message}); the reconciler will`
      )
    }
  }

  /**
   * One pass over the journal: every collection with open rows whose lease is
   * over, skipping those a request holds right now. Safe when every process
   * sweeps at once (the lock, then a claim on the rows, decide who works).
   */
  async sweep(): Promise<SweepSummary> {
    if (!this.sweeping_) {
      this.sweeping_ = this.sweepOnce().finally(() => (this.sweeping_ = undefined))
    }
    return await this.sweeping_
  }

  /** Retention: finished journal rows and expired Idempotency-Keys of the plugin. */
  async prune(): Promise<{ attempts: number; idempotencyKeys: number }> {
    const attempts = await this.attempts_.deleteFinished()
    const keys = await this.attempts_.query(
      `DELETE FROM idempotency_key
        WHERE idempotency_key LIKE 'pcp:%'
          AND created_at < now() - make_interval(secs => $1)
          AND (response_code IS NOT NULL OR locked_at IS NULL OR locked_at < now() - make_interval(secs => $1))
        RETURNING id`,
      [this.options_.idempotency_key_ttl_seconds]
    )
    return { attempts, idempotencyKeys: keys.length }
  }

  private async sweepOnce(): Promise<SweepSummary> {
    const summary: SweepSummary = { collections: 0, finished: 0, skipped: 0 }
    // Answers this process could not journal while the database was away go
    // first: otherwise their rows would look like calls that died in flight.
    await writeHeldAnswers()
    const collectionIds = await this.attempts_.collectionsToReconcile(SWEEP_BATCH)
    for (const collectionId of collectionIds) {
      summary.collections++
      const claim = () => this.attempts_.claimExpired(collectionId, this.attempts_.leaseMs)
      const result = await this.lock_.tryNow(collectionId, async (tx, collection) => {
        const rows = await claim()
        await this.finishRows(rows, { tx, collection }, `reconciler:${PROCESS_ID}`)
        return rows.length
      })
      if (result.locked) {
        summary.finished += result.value
      } else if (result.reason === "missing") {
        // The collection is gone: no request can be working on it.
        const rows = await claim()
        await this.finishRows(rows, null, `reconciler:${PROCESS_ID}`)
        summary.finished += rows.length
      } else {
        summary.skipped++
      }
    }
    return summary
  }

  private async finishRows(rows: AttemptRow[], locked: Locked, resolvedBy: string, deadline?: number): Promise<void> {
    for (const row of rows) {
      try {
        await this.finishRow(row, locked, resolvedBy, deadline)
      } catch (err) {
        await this.attempts_.retryLater(row.id, (err as Error).message).catch(() => undefined)
        if (locked) {
          // The locked transaction may be unusable now: stop here, the rest waits for the next pass.
          throw err
        }
      }
    }
  }

  private async finishRow(row: AttemptRow, locked: Locked, resolvedBy: string, deadline?: number): Promise<void> {
    const calls = this.callsFor(row, locked?.collection ?? null, deadline)
    switch (row.operation) {
      case "initiate":
        if (row.state === "started" || !row.provider_data) {
          // The process died while the provider was creating something whose id it
          // never told us — unless the answer is only late to reach the journal.
          if (row.state === "started" && holdsAnswer(row.id)) {
            throw new Error("this process holds the provider's answer and could not journal it yet")
          }
          const marked =
            row.state === "started"
              ? await this.attempts_.markUnanswered(row.id, resolvedBy)
              : await this.attempts_.finish(row.id, "unknown", resolvedBy)
          if (!marked) {
            throw new Error("the provider's answer reached the journal meanwhile; the next pass finishes it")
          }
          this.logger_.warn(
            `medusa-plugin-payment-collections: attempt ${row.id} (initiate at ${row.provider_id} for payment collection ${row.payment_collection_id}) cannot be decided: the provider never answered; marked unknown`
          )
          return
        }
        return await this.removeAtProvider(row, calls, "delete", "undone", resolvedBy)
      case "delete":
        return await this.removeAtProvider(row, calls, "delete", "committed", resolvedBy)
      case "cancel":
        return await this.removeAtProvider(row, calls, "cancel", "committed", resolvedBy)
      case "update":
        return await this.setBackUpdate(row, locked, calls, resolvedBy)
      case "authorize":
        return await this.finishAuthorization(row, locked, calls, resolvedBy)
      default:
        await this.attempts_.finish(row.id, "undone", resolvedBy)
    }
  }

  /**
   * Deletes (or cancels) at the provider what `data` names. A row that is
   * itself that delete (staged by its request) gets the answer; otherwise the
   * call is one of its own in the journal.
   */
  private async removeAtProvider(
    row: AttemptRow,
    calls: ProviderCalls,
    how: "delete" | "cancel",
    state: "undone" | "committed",
    resolvedBy: string,
    data: Record<string, unknown> | null = row.provider_data
  ): Promise<void> {
    if (!data) {
      await this.attempts_.finish(row.id, "unknown", resolvedBy)
      return
    }
    const session: SessionLike = { id: row.payment_session_id ?? "", provider_id: row.provider_id, data }
    const invoke = () =>
      how === "delete"
        ? this.client_.delete(row.provider_id, session, this.manager_)
        : this.client_.cancel(row.provider_id, session, this.manager_)
    if (row.operation === how) {
      const outcome = await calls.callStaged(row, invoke)
      if (outcome.kind === "ok") {
        await this.attempts_.finish(row.id, state, resolvedBy)
      } else {
        await this.notYet(row, outcome, undefined, resolvedBy)
      }
      return
    }
    const result = await this.callAndFinish(
      calls,
      { operation: how, providerId: row.provider_id, sessionId: row.payment_session_id, providerData: data },
      invoke
    )
    if (result.ok) {
      await this.attempts_.finish(row.id, state, resolvedBy)
    } else {
      await this.notYet(row, result.outcome, `the provider did not confirm the ${how}`, resolvedBy)
    }
  }

  /** An update that did not commit: the provider goes back to what the database holds. */
  private async setBackUpdate(row: AttemptRow, locked: Locked, calls: ProviderCalls, resolvedBy: string): Promise<void> {
    const session = locked && (await this.sessionOf(locked, row.payment_session_id))
    const answeredId = (row.provider_data as { id?: unknown } | null)?.id
    if (session && typeof answeredId === "string" && answeredId !== (session.data as { id?: unknown }).id) {
      // The provider answered the update with a new object (Stripe re-initiates when the
      // customer differs): the database still names the old one, so the new one goes.
      return await this.removeAtProvider(row, calls, "delete", "undone", resolvedBy)
    }
    if (!session || isAuthorized(session)) {
      await this.attempts_.finish(row.id, "undone", resolvedBy)
      return
    }
    const context = processorContext(locked!.collection, session.amount ?? locked!.collection.amount, null)
    const result = await this.callAndFinish(
      calls,
      { operation: "update", providerId: session.provider_id, sessionId: session.id, amount: session.amount },
      () => this.client_.update(session.provider_id, session, context, locked!.tx)
    )
    if (!result.ok) {
      await this.notYet(row, result.outcome, "the provider did not confirm setting the payment back", resolvedBy)
      return
    }
    const answered = result.value.sessionData
    if (answered && canonicalJson(answered) !== canonicalJson(session.data)) {
      // Only what the provider changed is written: a set-back that lands where the
      // database already is leaves the row as the request that failed found it.
      await locked!.tx.query(`UPDATE payment_session SET data = $2, updated_at = now() WHERE id = $1`, [
        session.id,
        JSON.stringify(answered),
      ])
    }
    await this.attempts_.finish(row.id, "undone", resolvedBy, locked!.tx)
  }

  /**
   * An authorization whose request did not record it. What the provider says
   * decides: authorized → recorded (adopted), never voided while its session is
   * part of the collection.
   */
  private async finishAuthorization(row: AttemptRow, locked: Locked, calls: ProviderCalls, resolvedBy: string): Promise<void> {
    const answered = row.state === "answered" ? (row.provider_data as { status?: string; data?: Record<string, unknown> } | null) : null
    const session = locked && (await this.sessionOf(locked, row.payment_session_id))
    let status = answered?.status
    let data = answered?.data ?? session?.data
    if (!answered) {
      if (!session) {
        // Died mid-call, and the session is gone: nothing of ours to ask about.
        await this.attempts_.finish(row.id, "undone", resolvedBy)
        return
      }
      const asked = await this.callAndFinish(calls, { operation: "status", providerId: session.provider_id, sessionId: session.id }, () =>
        this.client_.status(session.provider_id, session, this.manager_)
      )
      if (!asked.ok) {
        await this.notYet(row, asked.outcome, "the provider did not tell the session's status", resolvedBy)
        return
      }
      status = asked.value
      data = session.data
    }
    if (status !== "authorized") {
      await this.attempts_.finish(row.id, "undone", resolvedBy)
      return
    }
    if (!session) {
      // Its session left the collection: nothing will ever capture this hold.
      return await this.removeAtProvider(row, calls, "cancel", "undone", resolvedBy, data ?? null)
    }
    if (isAuthorized(session)) {
      // A retry has recorded this very authorization already.
      await this.attempts_.finish(row.id, "adopted", resolvedBy)
      return
    }
    await this.recordAuthorization(locked!, session, data ?? session.data, calls, row, resolvedBy)
  }

  private async recordAuthorization(
    locked: NonNullable<Locked>,
    session: SessionRow,
    data: Record<string, unknown>,
    calls: ProviderCalls,
    row: AttemptRow,
    resolvedBy: string
  ): Promise<void> {
    const { tx, collection } = locked
    // The session as core hands it over after saving the authorization.
    const now = new Date()
    const authorizedSession = { ...session, data, status: "authorized", payment_authorized_at: now, updated_at: now }
    const paymentData = await this.callAndFinish(
      calls,
      { operation: "retrieve", providerId: session.provider_id, sessionId: session.id, amount: session.amount },
      () => this.client_.paymentData(session.provider_id, authorizedSession, tx)
    )
    if (!paymentData.ok) {
      await this.notYet(row, paymentData.outcome, "the provider did not give the payment's data", resolvedBy)
      return
    }
    await writeAuthorization(tx, collection.id, {
      sessionId: session.id,
      status: "authorized",
      data,
      payment: {
        id: entityId("pay"),
        amount: session.amount ?? 0,
        currency_code: collection.currency_code,
        provider_id: session.provider_id,
        data: paymentData.value,
      },
      committedAttemptIds: [],
    })
    await this.refreshCollectionStatus(tx, collection)
    await this.attempts_.finish(row.id, "adopted", resolvedBy, tx)
    this.logger_.info(
      `medusa-plugin-payment-collections: recorded the authorization of payment session ${session.id} that its request could not record (attempt ${row.id})`
    )
  }

  /** Status and authorized amount from the authorized sessions, and the event core emits. */
  async refreshCollectionStatus(tx: EntityManager, collection: CollectionRow): Promise<CollectionRow> {
    const sessions = await listSessions(tx, collection.id)
    const authorized = sessions.filter(isAuthorized).reduce((sum, s) => sum + (s.amount ?? 0), 0)
    const status =
      collection.status === "canceled" ? collection.status : statusForAuthorizedAmount(authorized, collection.amount)
    const updated = await saveCollectionStatus(tx, collection.id, status, authorized)
    await this.eventBus_.withTransaction(tx).emit(PAYMENT_AUTHORIZED_EVENT, { id: collection.id })
    return updated
  }

  /**
   * Makes one journaled call and closes its own row at once: the finisher's
   * calls are themselves repeatable, so their rows need no other finishing.
   */
  private async callAndFinish<T>(
    calls: ProviderCalls,
    spec: CallSpec,
    invoke: () => Promise<ProviderOutcome<T>>
  ): Promise<{ ok: true; value: T } | { ok: false; outcome: Failed }> {
    const { outcome, attemptId } = await calls.callWithId(spec, invoke, () => null)
    if (outcome.kind !== "ok") {
      return { ok: false, outcome }
    }
    await this.attempts_.finish(attemptId, "committed", "finisher").catch(() => undefined)
    return { ok: true, value: outcome.value }
  }

  /**
   * A finishing step the provider did not confirm: tried again later, with
   * backoff — or, after too many tries, left `unknown` for a human (the
   * attempt log shows why): a provider that keeps refusing will not change its
   * mind, one that keeps failing may be down for good.
   */
  private async notYet(row: AttemptRow, failed: Failed, why: string | undefined, resolvedBy: string): Promise<void> {
    const tries = row.recovery_attempts + 1
    const limit = failed.kind === "refused" ? MAX_REFUSED_TRIES : MAX_FAILED_TRIES
    if (tries < limit) {
      await this.attempts_.retryLater(row.id, why)
      return
    }
    await this.attempts_.retryLater(row.id, why)
    await this.attempts_.finish(row.id, "unknown", resolvedBy)
    this.logger_.warn(
      `medusa-plugin-payment-collections: gave up finishing attempt ${row.id} (${row.operation} at ${row.provider_id} for payment collection ${row.payment_collection_id}) after ${tries} tries; it is marked unknown: ${failed.kind === "refused" || failed.kind === "error" ? failed.message : "no answer"}`
    )
  }

  private callsFor(row: AttemptRow, collection: CollectionRow | null, deadline?: number): ProviderCalls {
    const origin: CallOrigin = {
      collectionId: row.payment_collection_id,
      currencyCode: collection?.currency_code ?? row.currency_code,
      requestId: row.request_id,
      deadline,
    }
    // A late answer to one of the finisher's own calls needs nothing: the row it
    // finishes stays open, and its next pass repeats the call.
    return new ProviderCalls(this.attempts_, origin, this.logger_, async () => undefined)
  }

  private async sessionOf(locked: NonNullable<Locked>, sessionId: string | null): Promise<SessionRow | undefined> {
    if (!sessionId) {
      return undefined
    }
    const sessions = await listSessions(locked.tx, locked.collection.id)
    return sessions.find((s) => s.id === sessionId)
  }
}
