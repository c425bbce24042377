import {
  AbstractPaymentProcessor,
  PaymentProviderService,
  PaymentSession,
} from "@medusajs/medusa"
import { EntityManager } from "typeorm"
import { isMedusaError, paymentProviderUnavailable } from "./errors"

type Logger = { warn: (msg: string) => void; error: (msg: string) => void }

/** Something a provider did for this request, and how to take it back. */
type ProviderSideEffect = {
  description: string
  providerId: string
  undo: () => Promise<unknown>
}

function isDatabaseError(err: unknown): boolean {
  const e = err as { name?: string; driverError?: unknown; code?: unknown }
  return (
    e?.name === "QueryFailedError" ||
    e?.driverError !== undefined ||
    e?.name === "QueryRunnerAlreadyReleasedError" ||
    e?.name === "EntityNotFoundError"
  )
}

/**
 * The plugin's one way to reach a payment provider. It drives the host's
 * paymentProviderService (so every installed provider works, processors and
 * legacy payment services alike), bounds each call in time, turns crashes into
 * errors that name the provider, and remembers what the provider created or
 * authorized so a failed transaction can undo it there.
 */
export class ProviderGateway {
  private readonly effects: ProviderSideEffect[] = []

  constructor(
    private readonly paymentProviderService: PaymentProviderService,
    private readonly baseManager: EntityManager,
    private readonly timeoutMs: number,
    private readonly logger: Logger
  ) {}

  /** Whether the backend has this provider installed (a `pp_<id>` service). */
  isInstalled(providerId: string): boolean {
    try {
      return !!this.paymentProviderService.retrieveProvider(providerId)
    } catch {
      return false
    }
  }

  get hasSideEffects(): boolean {
    return this.effects.length > 0
  }

  async call<T>(
    providerId: string,
    operation: string,
    work: () => Promise<T>
  ): Promise<T> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            paymentProviderUnavailable(
              providerId,
              504,
              `Payment provider ${providerId} did not answer ${operation} within ${this.timeoutMs} ms`
            )
          ),
        this.timeoutMs
      )
    })
    try {
      return await Promise.race([work(), timeout])
    } catch (err) {
      if (isMedusaError(err) || isDatabaseError(err)) {
        throw err
      }
      const reason = err instanceof Error ? err.message : String(err)
      throw paymentProviderUnavailable(
        providerId,
        502,
        `Payment provider ${providerId} failed to ${operation}: ${reason}`
      )
    } finally {
      clearTimeout(timer)
    }
  }

  recordInitiated(session: PaymentSession): void {
    this.effects.push({
      description: `initiated payment session ${session.id}`,
      providerId: session.provider_id,
      undo: () => this.deleteAtProvider(session),
    })
  }

  recordAuthorized(session: PaymentSession): void {
    this.effects.push({
      description: `authorized payment session ${session.id}`,
      providerId: session.provider_id,
      undo: () => this.cancelAtProvider(session),
    })
  }

  /**
   * An update is taken back by updating again with the input the session had
   * before. Core's updateSession then also rewrites the session's row, with the
   * values the rollback restored.
   */
  recordUpdated(
    updated: PaymentSession,
    previousInput: Parameters<PaymentProviderService["updateSession"]>[1]
  ): void {
    this.effects.push({
      description: `updated payment session ${updated.id}`,
      providerId: updated.provider_id,
      undo: () =>
        this.paymentProviderService
          .withTransaction(this.baseManager)
          .updateSession(updated, previousInput),
    })
  }

  /**
   * Undoes at the providers what this request made there, newest first. Runs
   * after the transaction rolled back, outside it. A failure here can only be
   * logged: the client already gets the original error.
   */
  async undo(): Promise<void> {
    while (this.effects.length) {
      const effect = this.effects.pop()!
      try {
        await this.call(effect.providerId, `undo: ${effect.description}`, effect.undo)
      } catch (err) {
        this.logger.error(
          `medusa-plugin-payment-collections: could not undo at provider ${effect.providerId} (${effect.description}): ${(err as Error).message}`
        )
      }
    }
  }

  private async deleteAtProvider(session: PaymentSession): Promise<void> {
    const provider = this.paymentProviderService.retrieveProvider(
      session.provider_id
    ) as unknown
    if (provider instanceof AbstractPaymentProcessor) {
      await provider.deletePayment(session.data)
      return
    }
    await (provider as LegacyPaymentService)
      .withTransaction(this.baseManager)
      .deletePayment(session)
  }

  private async cancelAtProvider(session: PaymentSession): Promise<void> {
    const provider = this.paymentProviderService.retrieveProvider(
      session.provider_id
    ) as unknown
    if (provider instanceof AbstractPaymentProcessor) {
      await provider.cancelPayment(session.data)
      return
    }
    await (provider as LegacyPaymentService)
      .withTransaction(this.baseManager)
      .cancelPayment({ data: session.data })
  }
}

type LegacyPaymentService = {
  withTransaction(manager: EntityManager): LegacyPaymentService
  deletePayment(session: unknown): Promise<unknown>
  cancelPayment(payment: unknown): Promise<unknown>
}
