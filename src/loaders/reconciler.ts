import type { AwilixContainer } from "awilix"
import { PluginOptions, resolveOptions } from "../types/options"
import type PaymentCollectionIdempotencyService from "../services/payment-collection-idempotency"
import type PaymentCollectionJournalService from "../services/payment-collection-journal"

type Logger = { warn: (m: string) => void; info: (m: string) => void }

/** The first sweep waits for the backend to finish booting. */
const BOOT_SWEEP_DELAY_MS = 1_000

/**
 * Starts the reconciler in this backend process: a sweep soon after boot,
 * then every `reconcile_interval_ms`, each followed by the journal's and the
 * Idempotency-Keys' retention. Its timers never keep the process alive, and
 * Medusa's shutdown (container.dispose) stops them and closes the journal's
 * connections. Every process runs one; they may sweep at the same time.
 */
export default async function startReconciler(
  container: AwilixContainer,
  options?: PluginOptions
): Promise<void> {
  const { reconcile_interval_ms } = resolveOptions(options)
  const journal: PaymentCollectionJournalService = container.resolve("paymentCollectionJournalService")
  const idempotency: PaymentCollectionIdempotencyService = container.resolve("paymentCollectionIdempotencyService")
  const logger: Logger = container.resolve("logger")

  let stopped = false
  const pass = async () => {
    if (stopped) {
      return
    }
    try {
      const swept = await journal.sweep()
      const attempts = await journal.prune()
      const keys = await idempotency.deleteExpired()
      if (swept.finished || attempts || keys) {
        logger.info(
          `medusa-plugin-payment-collections: reconciler finished ${swept.finished} provider call(s) on ${swept.collections} collection(s) (${swept.skipped} busy), removed ${attempts} old journal row(s) and ${keys} expired Idempotency-Key(s)`
        )
      }
    } catch (err) {
      logger.warn(`medusa-plugin-payment-collections: reconciler pass failed: ${(err as Error).message}`)
    }
  }

  const boot = setTimeout(pass, BOOT_SWEEP_DELAY_MS)
  boot.unref()
  const every = setInterval(pass, reconcile_interval_ms)
  every.unref()

  const stop = async () => {
    stopped = true
    clearTimeout(boot)
    clearInterval(every)
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
