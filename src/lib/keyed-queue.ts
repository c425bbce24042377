/**
 * Runs tasks one at a time per key, in arrival order, inside one process.
 *
 * This is not what makes the plugin correct — PostgreSQL's row lock does that,
 * across processes. It keeps one process from spending several pool
 * connections on requests that would only wait for the same row lock, so a
 * burst on one payment collection cannot starve requests for other ones.
 */
export class KeyedQueue {
  private readonly tails = new Map<string, Promise<void>>()

  /**
   * @param onTimeout - builds the error thrown when the task did not get its
   *   turn within `waitMs`; the task then never runs.
   */
  async run<T>(
    key: string,
    waitMs: number,
    task: () => Promise<T>,
    onTimeout: () => Error
  ): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve()
    let release!: () => void
    const done = new Promise<void>((resolve) => (release = resolve))
    const tail = previous.then(() => done)
    this.tails.set(key, tail)

    let timer: NodeJS.Timeout | undefined
    let timedOut = false
    try {
      await Promise.race([
        previous,
        new Promise<void>((_, reject) => {
          timer = setTimeout(() => {
            timedOut = true
            reject(onTimeout())
          }, waitMs)
        }),
      ])
      clearTimeout(timer)
      return await task()
    } finally {
      clearTimeout(timer)
      if (timedOut) {
        // Our turn may still come; pass it on at once so the queue moves.
        previous.then(release, release)
      } else {
        release()
      }
      // The entry goes once everything queued before it is over: a waiter that
      // gave up must not clear the key while an earlier task is still running.
      void tail.then(() => {
        if (this.tails.get(key) === tail) {
          this.tails.delete(key)
        }
      })
    }
  }

  /** Whether a task for `key` is running or waiting. */
  isBusy(key: string): boolean {
    return this.tails.has(key)
  }

  get size(): number {
    return this.tails.size
  }
}
