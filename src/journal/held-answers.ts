/** Backoff of a journal write retried in the background: 250 ms doubling to 10 s, for up to 30 minutes. */
const RETRY_FIRST_MS = 250
const RETRY_MAX_MS = 10_000
const RETRY_FOR_MS = 30 * 60_000

/**
 * Provider answers this process knows and the journal does not yet (the write
 * failed: the database was away), by attempt id. Retried in the background,
 * and by the reconciler before each pass, so a pass never takes a call whose
 * answer is here for one that died in flight. One per process (held by the
 * PaymentCollectionJournalService).
 */
export class HeldAnswers {
  private readonly writes = new Map<string, () => Promise<unknown>>()

  hold(id: string, write: () => Promise<unknown>): void {
    this.writes.set(id, write)
    void this.retryInBackground(id)
  }

  /** Whether this process knows the provider's answer to an attempt that the journal still shows as started. */
  holds(id: string): boolean {
    return this.writes.has(id)
  }

  /** Writes every held answer now; stops at the first failure (the database is still away). */
  async writeAll(): Promise<void> {
    for (const id of [...this.writes.keys()]) {
      await this.write(id)
    }
  }

  private async write(id: string): Promise<void> {
    const write = this.writes.get(id)
    if (write) {
      await write()
      this.writes.delete(id)
    }
  }

  private async retryInBackground(id: string): Promise<void> {
    const giveUpAt = Date.now() + RETRY_FOR_MS
    for (let wait = RETRY_FIRST_MS; this.writes.has(id) && Date.now() < giveUpAt; wait = Math.min(RETRY_MAX_MS, wait * 2)) {
      // Unref'd: a retry never keeps the process alive.
      await new Promise((resolve) => setTimeout(resolve, wait).unref())
      try {
        await this.write(id)
      } catch {
        // The database is still away; try again later.
      }
    }
    this.writes.delete(id)
  }
}
