import type { AwilixContainer } from "awilix"
import { PluginOptions, resolveOptions } from "../types/options"
import type PaymentAttemptsService from "../services/payment-attempts"
import type PaymentReconcilerService from "../services/payment-reconciler"

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
  const reconciler: PaymentReconcilerService = container.resolve("paymentReconcilerService")
  const attempts: PaymentAttemptsService = container.resolve("paymentAttemptsService")
  const logger: Logger = container.resolve("logger")

  let stopped = false
  const pass = async () => {
    if (stopped) {
      return
    }
    try {
      const swept = await reconciler.sweep()
      const pruned = await reconciler.prune()
      if (swept.finished || pruned.attempts || pruned.idempotencyKeys) {
        logger.info(
          `medusa-plugin-payment-collections: reconciler finished ${swept.finished} provider call(s) on ${swept.collections} collection(s) (${swept.skipped} busy), removed ${pruned.attempts} old journal row(s) and ${pruned.idempotencyKeys} expired Idempotency-Key(s)`
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
    await attempts.close()
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
