import { MedusaError } from "medusa-core-utils"
import { databaseUnavailable, isConnectionFailure, paymentProviderUnavailable } from "../lib/errors"
import { ProviderOutcome, SettledOutcome } from "../providers/provider-client"
import { AttemptStore } from "./attempt-store"
import { AttemptOperation, AttemptRow } from "./attempt-types"
import { HeldAnswers } from "./held-answers"

export type CallSpec = {
  operation: AttemptOperation
  providerId: string
  sessionId?: string | null
  amount?: number | null
  /** What the call is about, kept for an undo (a delete: the session's data). */
  providerData?: Record<string, unknown> | null
}

/** Who is calling: ends up in every journal row, so a row leads back to its request. */
export type CallOrigin = {
  collectionId: string
  currencyCode: string | null
  requestId?: string | null
  idempotencyKey?: string | null
  /** No call is started after this time (ms since the epoch): the request's budget is spent. */
  deadline?: number
}

type Logger = { warn: (m: string) => void; error: (m: string) => void }

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
    if (outcome.kind === "timeout") {
      this.attempts.timedOut(row.id, outcome.latencyMs).catch((err) => this.journalFailed(row.id, err))
      void outcome.late.then((late) => this.answeredLate(row, late, effectData))
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

  committedIds(): string[] {
    return [...this.committing]
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
      this.staged.has(row.id) ? committed : row.state === "answered" && !(committed && this.committing.has(row.id))
    )
  }

  done(): void {
    this.over()
  }

  private async start(spec: CallSpec): Promise<AttemptRow> {
    if (this.origin.deadline !== undefined && Date.now() > this.origin.deadline) {
      throw paymentProviderUnavailable(
        spec.providerId,
        504,
        `The request ran out of time before it could ${spec.operation} at payment provider ${spec.providerId}`
      )
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

  private async record<T>(
    row: AttemptRow,
    outcome: SettledOutcome<T>,
    effectData: (value: T) => Record<string, unknown> | null
  ): Promise<void> {
    const data = outcome.kind === "ok" ? effectData(outcome.value) : null
    row.state = outcome.kind === "ok" ? "answered" : "failed"
    row.outcome = outcome.kind
    if (data) {
      row.provider_data = data
    }
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
