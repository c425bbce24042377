import type { AwilixContainer } from "awilix"
import { resolveOptions } from "../types/options"
import type PaymentCollectionIdempotencyService from "../services/payment-collection-idempotency"
import type PaymentCollectionJournalService from "../services/payment-collection-journal"
import type PaymentCollectionProviderEventsService from "../services/payment-collection-provider-events"

type Logger = { warn: (m: string) => void; info: (m: string) => void }

/** What one pass did, and how long each of its steps took (ms). */
export type PassSummary = {
  swept: Awaited<ReturnType<PaymentCollectionJournalService["sweep"]>>
  adopted: number
  attempts: number
  keys: number
  events: number
  ms: { sweep: number; statusSync: number; prune: number; keys: number; events: number }
}

/**
 * One reconciler pass, as the timer runs it: the sweep of the journal, the
 * status sync, then the retention of the journal, the Idempotency-Keys and
 * the provider events. Exported so that `npm run bench -- --scale` times the
 * very pass the timer runs.
 */
export async function reconcilerPass(container: AwilixContainer): Promise<PassSummary> {
  const journal: PaymentCollectionJournalService = container.resolve("paymentCollectionJournalService")
  const idempotency: PaymentCollectionIdempotencyService = container.resolve("paymentCollectionIdempotencyService")
  const events: PaymentCollectionProviderEventsService = container.resolve("paymentCollectionProviderEventsService")
  const ms = { sweep: 0, statusSync: 0, prune: 0, keys: 0, events: 0 }
  const step = async <T>(name: keyof typeof ms, run: () => Promise<T>): Promise<T> => {
    const started = performance.now()
    try {
      return await run()
    } finally {
      ms[name] = performance.now() - started
    }
  }
  const swept = await step("sweep", () => journal.sweep())
  const adopted = await step("statusSync", () => events.syncStatuses())
  const attempts = await step("prune", () => journal.prune())
  const keys = await step("keys", () => idempotency.deleteExpired())
  const pruned = await step("events", () => events.prune())
  return { swept, adopted, attempts, keys, events: pruned, ms }
}

/** The first sweep waits for the backend to finish booting. */
const BOOT_SWEEP_DELAY_MS = 1_000

/**
 * Starts the reconciler in this backend process: a sweep soon after boot,
 * then every `reconcile_interval_ms`, each followed by the status sync for
 * missed provider events and the retention of the journal, the events acted
 * on and the Idempotency-Keys. Its timers never keep the process alive, and
 * Medusa's shutdown (container.dispose) stops them and closes the journal's
 * connections. Every process runs one — they may sweep at the same time —
 * except a `worker_mode: "server"` process, which leaves it to the workers
 * (with the Redis event bus a server process handles no events either); a
 * server still finishes its own requests' calls.
 * `options` as Medusa passes it: the plugin's options or the project's config
 * module (resolveOptions finds the plugin's in it, see pluginOptionsOf).
 */
export default async function startReconciler(container: AwilixContainer, options?: unknown): Promise<void> {
  const { reconcile_interval_ms } = resolveOptions(options)
  const journal: PaymentCollectionJournalService = container.resolve("paymentCollectionJournalService")
  const logger: Logger = container.resolve("logger")
  const { worker_mode } = container.resolve<{ projectConfig: { worker_mode?: string } }>("configModule").projectConfig

  let stopped = false
  const pass = async () => {
    if (stopped) {
      return
    }
    try {
      const { swept, adopted, attempts, keys } = await reconcilerPass(container)
      if (swept.finished || adopted || attempts || keys) {
        logger.info(
          `medusa-plugin-payment-collections: reconciler finished ${swept.finished} provider call(s) on ${swept.collections} collection(s) (${swept.skipped} busy), recorded ${adopted} authorization(s) found by the status sync, removed ${attempts} old journal row(s) and ${keys} expired Idempotency-Key(s)`
        )
      }
    } catch (err) {
      logger.warn(`medusa-plugin-payment-collections: reconciler pass failed: ${(err as Error).message}`)
    }
  }

  const timers: NodeJS.Timeout[] = []
  if (worker_mode !== "server") {
    timers.push(setTimeout(pass, BOOT_SWEEP_DELAY_MS), setInterval(pass, reconcile_interval_ms))
    timers.forEach((timer) => timer.unref())
  }

  const stop = async () => {
    stopped = true
    timers.forEach((timer) => clearTimeout(timer))
    await journal.close()
  }
  // An awilix singleton registration with a disposer, resolved once so that
  // container.dispose() (Medusa's shutdown) calls it.
  container.register("paymentCollectionsReconcilerTimers", {
    resolve: () => ({ stop }),
    lifetime: "SINGLETON",
    dispose: (timers: { stop: () => Promise<void> }) => timers.stop(),
  } as never)
  container.resolve("paymentCollectionsReconcilerTimers")
}
