import { MedusaError } from "medusa-core-utils"
import type PaymentAttemptsService from "../services/payment-attempts"
import type { AttemptOperation, AttemptRow } from "../services/payment-attempts"
import { databaseUnavailable, isConnectionFailure, paymentProviderUnavailable } from "./errors"
import { ProviderOutcome, SettledOutcome } from "./provider-client"

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

/** Backoff of a journal write retried in the background: 250 ms doubling to 10 s, for up to 30 minutes. */
const RETRY_FIRST_MS = 250
const RETRY_MAX_MS = 10_000
const RETRY_FOR_MS = 30 * 60_000

/**
 * Provider answers this process knows and the journal does not yet (the write
 * failed: the database was away), by attempt id. Retried in the background,
 * and by the reconciler before each pass, so a pass never takes a call whose
 * answer is here for one that died in flight.
 */
const heldAnswers = new Map<string, () => Promise<unknown>>()

function holdAnswer(id: string, write: () => Promise<unknown>): void {
  heldAnswers.set(id, write)
  void retryInBackground(id)
}

async function writeHeldAnswer(id: string): Promise<void> {
  const write = heldAnswers.get(id)
  if (write) {
    await write()
    heldAnswers.delete(id)
  }
}

async function retryInBackground(id: string): Promise<void> {
  const giveUpAt = Date.now() + RETRY_FOR_MS
  for (let wait = RETRY_FIRST_MS; heldAnswers.has(id) && Date.now() < giveUpAt; wait = Math.min(RETRY_MAX_MS, wait * 2)) {
    // Unref'd: a retry never keeps the process alive.
    await new Promise((resolve) => setTimeout(resolve, wait).unref())
    try {
      await writeHeldAnswer(id)
    } catch {
      // The database is still away; try again later.
    }
  }
  heldAnswers.delete(id)
}

/** Writes every held answer now; stops at the first failure (the database is still away). */
export async function writeHeldAnswers(): Promise<void> {
  for (const id of [...heldAnswers.keys()]) {
    await writeHeldAnswer(id)
  }
}

/** Whether this process knows the provider's answer to an attempt that the journal still shows as started. */
export function holdsAnswer(id: string): boolean {
  return heldAnswers.has(id)
}

/** A call that answered after its request stopped waiting, with the journal row as it now is. */
export type LateAnswer = { row: AttemptRow; outcome: SettledOutcome<unknown> }

/**
 * One request's provider calls, each journaled: `started` is committed before
 * the provider is called (no journal, no call), the answer is recorded the
 * moment it arrives, and every row is remembered here so that the request can
 * have it committed with its own rows or finish it when it does not commit.
 */
export class ProviderCalls {
  private readonly rows_ = new Map<string, AttemptRow>()
  private readonly staged = new Set<string>()
  private readonly committing = new Set<string>()
  private over!: () => void
  /** Resolves when the request has finished with its own rows. */
  readonly requestOver = new Promise<void>((resolve) => (this.over = resolve))

  constructor(
    private readonly attempts: PaymentAttemptsService,
    readonly origin: CallOrigin,
    private readonly logger: Logger,
    /** Finishes a call whose answer came after the request stopped waiting for it. */
    private readonly onLateAnswer: (late: LateAnswer) => Promise<void>
  ) {}

  get madeCalls(): boolean {
    return this.rows_.size > 0
  }

  /**
   * Calls a provider through `invoke`, journaled. `effectData` turns an `ok`
   * value into what an undo needs (null: nothing to undo).
   */
  async call<T>(
    spec: CallSpec,
    invoke: () => Promise<ProviderOutcome<T>>,
    effectData: (value: T) => Record<string, unknown> | null
  ): Promise<ProviderOutcome<T>> {
    return (await this.callWithId(spec, invoke, effectData)).outcome
  }

  /** `call`, also telling the journal row's id. */
  async callWithId<T>(
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
    let id: string
    try {
      id = await this.attempts.start(attempt)
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
    const row: AttemptRow = {
      id,
      payment_collection_id: attempt.collectionId,
      payment_session_id: attempt.sessionId,
      provider_id: attempt.providerId,
      operation: attempt.operation,
      state: "started",
      outcome: null,
      amount: attempt.amount,
      currency_code: attempt.currencyCode,
      provider_data: attempt.providerData,
      request_id: attempt.requestId ?? null,
      process: "",
      recovery_attempts: 0,
    }
    this.rows_.set(id, row)
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
      holdAnswer(row.id, write)
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
