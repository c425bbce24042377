import type { AwilixContainer } from "awilix"
import { resolveOptions } from "../types/options"
import type PaymentCollectionIdempotencyService from "../services/payment-collection-idempotency"
import type PaymentCollectionJournalService from "../services/payment-collection-journal"
import type PaymentCollectionProviderEventsService from "../services/payment-collection-provider-events"

type Logger = { warn: (m: string) => void; info: (m: string) => void }

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
  const idempotency: PaymentCollectionIdempotencyService = container.resolve("paymentCollectionIdempotencyService")
  const events: PaymentCollectionProviderEventsService = container.resolve("paymentCollectionProviderEventsService")
  const logger: Logger = container.resolve("logger")
  const { worker_mode } = container.resolve<{ projectConfig: { worker_mode?: string } }>("configModule").projectConfig

  let stopped = false
  const pass = async () => {
    if (stopped) {
      return
    }
    try {
      const swept = await journal.sweep()
      const adopted = await events.syncStatuses()
      const attempts = await journal.prune()
      const keys = await idempotency.deleteExpired()
      await events.prune()
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
