import { CollectionLock } from "../db/collection-lock"
import { AttemptStore } from "./attempt-store"
import { PROCESS_ID } from "./attempt-types"
import { Finisher } from "./finisher"
import { HeldAnswers } from "./held-answers"

/** Collections one sweep looks at. */
const SWEEP_BATCH = 50

export type SweepSummary = { collections: number; finished: number; skipped: number }

/**
 * The sweep over the journal for calls whose request could not finish them
 * (it died): every collection with open rows whose lease is over, skipping
 * those a request holds right now, each finished by the Finisher's rules; and
 * the journal's retention. Safe when every process sweeps at once (the lock,
 * then a claim on the rows, decide who works).
 */
export class Reconciler {
  private sweeping: Promise<SweepSummary> | undefined

  constructor(
    private readonly store: AttemptStore,
    private readonly heldAnswers: HeldAnswers,
    private readonly finisher: Finisher,
    private readonly lock: CollectionLock
  ) {}

  /** One pass; a pass already running in this process is joined, not doubled. */
  async sweep(): Promise<SweepSummary> {
    if (!this.sweeping) {
      this.sweeping = this.sweepOnce().finally(() => (this.sweeping = undefined))
    }
    return await this.sweeping
  }

  /** Retention: finished journal rows older than `attempt_retention_days`. */
  async prune(): Promise<number> {
    return await this.store.deleteFinished()
  }

  private async sweepOnce(): Promise<SweepSummary> {
    const summary: SweepSummary = { collections: 0, finished: 0, skipped: 0 }
    // Answers this process could not journal while the database was away go
    // first: otherwise their rows would look like calls that died in flight.
    await this.heldAnswers.writeAll()
    const resolvedBy = `reconciler:${PROCESS_ID}`
    for (const collectionId of await this.store.collectionsToReconcile(SWEEP_BATCH)) {
      summary.collections++
      const claim = () => this.store.claimExpired(collectionId, this.store.leaseMs)
      const result = await this.lock.tryNow(collectionId, async (tx, collection) => {
        const rows = await claim()
        await this.finisher.finishRows(rows, { tx, collection }, resolvedBy)
        return rows.length
      })
      if (result.locked) {
        summary.finished += result.value
      } else if (result.reason === "missing") {
        // The collection is gone: no request can be working on it.
        const rows = await claim()
        await this.finisher.finishRows(rows, null, resolvedBy)
        summary.finished += rows.length
      } else {
        summary.skipped++
      }
    }
    return summary
  }
}
