import { AbstractPaymentProcessor, PaymentProviderService } from "@medusajs/medusa"
import { EntityManager } from "typeorm"
import { isMedusaError, paymentProviderUnavailable } from "./errors"
import {
  ProviderCallObserver,
  ProviderEffect,
  instrumentProvider,
  observeProviderCalls,
} from "./provider-instrumentation"

type Logger = { warn: (msg: string) => void; error: (msg: string) => void }

type Undo = { description: string; providerId: string; run: () => Promise<unknown> }

export type CallOptions = {
  /** How to take back an update, given the provider's data after it. */
  undoUpdate?: (data: Record<string, unknown>) => Promise<unknown>
}

function isDatabaseError(err: unknown): boolean {
  const e = err as { name?: string; driverError?: unknown }
  return (
    e?.name === "QueryFailedError" ||
    e?.driverError !== undefined ||
    e?.name === "QueryRunnerAlreadyReleasedError" ||
    e?.name === "EntityNotFoundError"
  )
}

/**
 * The plugin's one way to reach a payment provider, one per request. It drives
 * the host's paymentProviderService (so every installed provider works,
 * processors and legacy payment services alike), bounds the provider's time,
 * turns crashes into errors that name the provider, and learns from the
 * provider itself (see provider-instrumentation) what it created, authorized
 * or updated, so that a request that does not commit undoes it there — also
 * when the provider answers only after the request gave up on it.
 */
export class ProviderGateway {
  private readonly undos: Undo[] = []
  private undone = false

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
    return this.undos.length > 0
  }

  /**
   * Runs `work` — a paymentProviderService call that asks `providerId` — and
   * answers 504 when the provider is still busy after the timeout. Time spent
   * in the database around the provider call (core writes rows in the same
   * call) does not count: it is bounded by the transaction's lock_timeout.
   */
  async call<T>(
    providerId: string,
    operation: string,
    work: () => Promise<T>,
    options: CallOptions = {}
  ): Promise<T> {
    instrumentProvider(this.paymentProviderService.retrieveProvider(providerId))
    let inFlight = 0
    const observer: ProviderCallObserver = {
      providerCallStarted: () => void inFlight++,
      providerCallFinished: () => void inFlight--,
      providerDid: (effect) => this.remember(providerId, effect, options),
    }

    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      const check = () => {
        if (inFlight > 0) {
          reject(
            paymentProviderUnavailable(
              providerId,
              504,
              `Payment provider ${providerId} did not answer ${operation} within ${this.timeoutMs} ms`
            )
          )
        } else {
          timer = setTimeout(check, this.timeoutMs)
        }
      }
      timer = setTimeout(check, this.timeoutMs)
    })
    try {
      return await Promise.race([observeProviderCalls(observer, work), timeout])
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

  private remember(
    providerId: string,
    effect: ProviderEffect,
    options: CallOptions
  ): void {
    const run = this.undoFor(providerId, effect, options)
    if (!run) {
      return
    }
    const undo = { description: `${effect.kind} payment`, providerId, run }
    if (this.undone) {
      // The provider answered after the request gave up: take it back now.
      void this.runUndo(undo)
      return
    }
    this.undos.push(undo)
  }

  private undoFor(
    providerId: string,
    effect: ProviderEffect,
    options: CallOptions
  ): (() => Promise<unknown>) | undefined {
    switch (effect.kind) {
      case "initiated":
        return () => this.deleteAtProvider(providerId, effect.data)
      case "authorized":
        return () => this.cancelAtProvider(providerId, effect.data)
      case "updated":
        return options.undoUpdate && (() => options.undoUpdate!(effect.data))
    }
  }

  /**
   * Undoes at the providers what this request made there, newest first. Runs
   * after the transaction rolled back, outside it. A failure here can only be
   * logged: the client already gets the original error.
   */
  async undo(): Promise<void> {
    this.undone = true
    while (this.undos.length) {
      await this.runUndo(this.undos.pop()!)
    }
  }

  private async runUndo(undo: Undo): Promise<void> {
    try {
      await this.call(undo.providerId, `undo the ${undo.description}`, undo.run)
    } catch (err) {
      this.logger.error(
        `medusa-plugin-payment-collections: could not undo the ${undo.description} at provider ${undo.providerId}: ${(err as Error).message}`
      )
    }
  }

  private deleteAtProvider(providerId: string, data: Record<string, unknown>) {
    return this.askProvider(providerId, "deletePayment", data)
  }

  private cancelAtProvider(providerId: string, data: Record<string, unknown>) {
    return this.askProvider(providerId, "cancelPayment", data)
  }

  /** A processor takes the session data; a legacy service a session-like object. */
  private async askProvider(
    providerId: string,
    method: "deletePayment" | "cancelPayment",
    data: Record<string, unknown>
  ): Promise<void> {
    const provider = this.paymentProviderService.retrieveProvider(providerId) as unknown
    if (provider instanceof AbstractPaymentProcessor) {
      await provider[method](data)
      return
    }
    await (provider as LegacyPaymentService)
      .withTransaction(this.baseManager)
      [method]({ provider_id: providerId, data })
  }
}

type LegacyPaymentService = {
  withTransaction(manager: EntityManager): LegacyPaymentService
  deletePayment(session: unknown): Promise<unknown>
  cancelPayment(payment: unknown): Promise<unknown>
}
