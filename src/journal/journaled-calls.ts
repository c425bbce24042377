import { MedusaError } from "medusa-core-utils"
import { databaseUnavailable, isConnectionFailure, paymentProviderUnavailable } from "../lib/errors"
import { entityId } from "../lib/entity-id"
import { FinderWindow } from "../providers/finders"
import { ProviderOutcome, SettledOutcome } from "../providers/provider-client"
import { AttemptStore } from "./attempt-store"
import { CommittedAttempt } from "../db/collection-writes"
import { AttemptOperation, AttemptRow } from "./attempt-types"
import { HeldAnswers } from "./held-answers"
import { resendSweepData } from "./resend-sweep"

export type CallSpec = {
  operation: AttemptOperation
  providerId: string
  sessionId?: string | null
  amount?: number | null
  /** What the call is about, kept for an undo (a delete: the session's data). */
  providerData?: Record<string, unknown> | null
  /**
   * An ok answer needs no journal write of its own: it is marked committed with
   * the request's rows, and should the process die before that, the call is
   * settled by asking the provider (a read, an authorize: its status; an
   * initiate or update: only at a provider with a finder).
   */
  answerWithRows?: boolean
}

/** Who is calling: ends up in every journal row, so a row leads back to its request. */
export type CallOrigin = {
  collectionId: string
  currencyCode: string | null
  requestId?: string | null
  idempotencyKey?: string | null
  /** No call is started after this time (ms since the epoch): the request's budget is spent. */
  deadline?: number
  /**
   * False once the request's transaction (and the collection's row lock) is
   * lost: no call is started then; what was done is settled through the journal.
   */
  holdsLock?: () => boolean
}

type Logger = { warn: (m: string) => void; error: (m: string) => void }

/** The request's transaction ended under it: a 503, so the client retries once what it did is settled. */
export function lockLost(): MedusaError {
  return databaseUnavailable(
    "The request lost its database transaction (and the payment collection's lock) while a payment provider answered; what it did is being settled, retry later"
  )
}

/** A call that answered after its request stopped waiting, with the journal row as it now is. */
export type LateAnswer = { row: AttemptRow; outcome: SettledOutcome<unknown> }

/**
 * One request's provider calls, each journaled: `started` is committed before
 * the provider is called (no journal, no call), the answer is recorded the
 * moment it arrives, and every row is remembered here so that the request can
 * have it committed with its own rows or finish it when it does not commit.
 */
export class JournaledCalls {
  private readonly rows_ = new Map<string, AttemptRow>()
  private readonly staged = new Set<string>()
  private readonly committing = new Set<string>()
  private readonly latencies = new Map<string, number>()
  private readonly resendSweeps = new Map<string, FinderWindow>()
  private over!: () => void
  /** Resolves when the request has finished with its own rows. */
  readonly requestOver = new Promise<void>((resolve) => (this.over = resolve))

  constructor(
    private readonly attempts: AttemptStore,
    private readonly heldAnswers: HeldAnswers,
    readonly origin: CallOrigin,
    private readonly logger: Logger,
    /** Finishes a call whose answer came after the request stopped waiting for it. */
    private readonly onLateAnswer: (late: LateAnswer) => Promise<void>
  ) {}

  get madeCalls(): boolean {
    return this.rows_.size > 0
  }

  /**
   * Calls a provider through `invoke`, journaled, and tells the journal row's
   * id. `effectData` turns an `ok` value into what an undo needs (null:
   * nothing to undo).
   */
  async call<T>(
    spec: CallSpec,
    invoke: () => Promise<ProviderOutcome<T>>,
    effectData: (value: T) => Record<string, unknown> | null
  ): Promise<{ outcome: ProviderOutcome<T>; attemptId: string }> {
    const row = await this.start(spec)
    const outcome = await invoke()
    this.latencies.set(row.id, outcome.latencyMs)
    if (outcome.kind === "timeout") {
      this.attempts.timedOut(row.id, outcome.latencyMs).catch((err) => this.journalFailed(row.id, err))
      void outcome.late.then((late) => this.answeredLate(row, late, effectData))
    } else if (outcome.kind === "ok" && spec.answerWithRows) {
      this.note(row, outcome, effectData)
    } else {
      await this.record(row, outcome, effectData)
    }
    return { outcome, attemptId: row.id }
  }

  /**
   * Makes the call a staged row stands for (its `started` was committed with
   * the request's transaction): the answer is recorded on that same row.
   */
  async callStaged<T>(
    row: AttemptRow,
    invoke: () => Promise<ProviderOutcome<T>>
  ): Promise<ProviderOutcome<T>> {
    this.assertBeforeDeadline(row.operation, row.provider_id)
    this.rows_.set(row.id, row)
    const outcome = await invoke()
    if (outcome.kind === "ok") {
      await this.record(row, outcome, () => null)
    } else {
      // Still to be done: the row stays open, with what went wrong this time.
      await this.attempts
        .noteFailure(row.id, outcome)
        .catch((err) => this.journalFailed(row.id, err))
    }
    return outcome
  }

  /** Rows staged inside the request's transaction (calls to make once it commits). */
  addStaged(rows: AttemptRow[]): void {
    for (const row of rows) {
      this.rows_.set(row.id, row)
      this.staged.add(row.id)
    }
  }

  /** The effect of this row is written in the request's transaction (marked committed with it). */
  willCommit(id: string): void {
    this.committing.add(id)
  }

  /**
   * When row `id` commits, a `find` row goes with it, to look for a copy of
   * its call the provider's client may have sent on its own (resend-sweep.ts).
   */
  sweepForResend(id: string, window: FinderWindow): void {
    this.resendSweeps.set(id, window)
  }

  /** Rows to mark committed with the request's rows (`ids`: these only; else every one it will commit). */
  committedAttempts(ids: string[] = [...this.committing]): CommittedAttempt[] {
    return ids.map((id) => {
      const window = this.resendSweeps.get(id)
      return {
        id,
        latency_ms: this.latencies.get(id) ?? null,
        ...(window ? { sweep_id: entityId("pcatt"), sweep_data: resendSweepData(window) } : {}),
      }
    })
  }

  /**
   * Rows the request may have to finish itself: answered calls its
   * transaction did not commit, and the staged ones. When the transaction
   * failed, whether it committed is read back from the journal under the lock
   * (a commit marked its rows committed). A call still in flight is finished
   * when it answers.
   */
  toFinish(committed: boolean): AttemptRow[] {
    return [...this.rows_.values()].filter((row) =>
      this.staged.has(row.id)
        ? committed
        : row.state === "uncertain" || (row.state === "answered" && !(committed && this.committing.has(row.id)))
    )
  }

  /** Whether a row is a call staged in the request's transaction (made once it commits). */
  isStaged(id: string): boolean {
    return this.staged.has(id)
  }

  done(): void {
    this.over()
  }

  /** No call is started once the request's budget is spent (its last call ends a provider timeout later). */
  private assertBeforeDeadline(operation: string, providerId: string): void {
    if (this.origin.deadline !== undefined && Date.now() > this.origin.deadline) {
      throw paymentProviderUnavailable(
        providerId,
        504,
        `The request ran out of time before it could ${operation} at payment provider ${providerId}`
      )
    }
  }

  private async start(spec: CallSpec): Promise<AttemptRow> {
    this.assertBeforeDeadline(spec.operation, spec.providerId)
    if (this.origin.holdsLock && !this.origin.holdsLock()) {
      throw lockLost()
    }
    const attempt = {
      collectionId: this.origin.collectionId,
      sessionId: spec.sessionId ?? null,
      providerId: spec.providerId,
      operation: spec.operation,
      amount: spec.amount ?? null,
      currencyCode: this.origin.currencyCode,
      providerData: spec.providerData ?? null,
      requestId: this.origin.requestId,
      idempotencyKey: this.origin.idempotencyKey,
    }
    let row: AttemptRow
    try {
      row = await this.attempts.start(attempt)
    } catch (err) {
      // Without its record a call could not be finished after a crash: it is not made.
      const reason = (err as Error).message
      this.logger.error(`medusa-plugin-payment-collections: could not journal a ${spec.operation} call: ${reason}`)
      throw isConnectionFailure(err)
        ? databaseUnavailable("The database is unavailable; retry later")
        : new MedusaError(
            MedusaError.Types.DB_ERROR,
            `The attempt journal could not record the ${spec.operation} call to payment provider ${spec.providerId} (${reason}); have the plugin's migrations been run?`
          )
    }
    this.rows_.set(row.id, row)
    return row
  }

  /** What the provider answered, as this request knows it (the journal may learn it later, or never need to). */
  private note<T>(
    row: AttemptRow,
    outcome: SettledOutcome<T>,
    effectData: (value: T) => Record<string, unknown> | null
  ): Record<string, unknown> | null {
    const data = outcome.kind === "ok" ? effectData(outcome.value) : null
    // Only a refusal is known to have done nothing; a crash may follow an effect.
    row.state = outcome.kind === "ok" ? "answered" : outcome.kind === "refused" ? "failed" : "uncertain"
    row.outcome = outcome.kind
    if (data) {
      row.provider_data = data
    }
    return data
  }

  private async record<T>(
    row: AttemptRow,
    outcome: SettledOutcome<T>,
    effectData: (value: T) => Record<string, unknown> | null
  ): Promise<void> {
    const data = this.note(row, outcome, effectData)
    const write = () => this.attempts.answer(row.id, outcome as SettledOutcome<unknown>, data)
    try {
      await write()
    } catch (err) {
      // The request goes on with what it knows. The journal must learn the
      // answer too (an undo needs the provider's data), so the write is tried
      // again in the background until the database takes it.
      this.journalFailed(row.id, err)
      this.heldAnswers.hold(row.id, write)
    }
  }

  private async answeredLate<T>(
    row: AttemptRow,
    outcome: SettledOutcome<T>,
    effectData: (value: T) => Record<string, unknown> | null
  ): Promise<void> {
    try {
      await this.record(row, outcome, effectData)
      await this.requestOver
      await this.onLateAnswer({ row, outcome: outcome as SettledOutcome<unknown> })
    } catch (err) {
      this.logger.error(
        `medusa-plugin-payment-collections: could not finish the late answer of attempt ${row.id}: ${(err as Error).message}`
      )
    }
  }

  private journalFailed(id: string, err: unknown): void {
    this.logger.warn(`medusa-plugin-payment-collections: attempt ${id} not updated in the journal: ${(err as Error).message}`)
  }
}
