import { AbstractPaymentProcessor, PaymentProviderService } from "@medusajs/medusa"
import { EntityManager } from "typeorm"
import { isMedusaError } from "../lib/errors"
import { ProcessorContext, processorInput } from "./session-input"

/**
 * What one provider call came to. A call never throws: a refusal, a crash and
 * a timeout are values the caller decides on, in one place.
 */
export type ProviderOutcome<T> =
  | { kind: "ok"; value: T; latencyMs: number }
  /** The provider said no: a processor's PaymentProcessorError, or a MedusaError a legacy service threw. */
  | { kind: "refused"; message: string; code?: string; type?: string; latencyMs: number }
  /** The provider crashed (threw something that is not an answer). */
  | { kind: "error"; message: string; latencyMs: number }
  /** Still running after the timeout; `late` settles with what it finally came to. */
  | { kind: "timeout"; late: Promise<SettledOutcome<T>>; latencyMs: number }

export type SettledOutcome<T> = Exclude<ProviderOutcome<T>, { kind: "timeout" }>

export type SessionLike = { id: string; provider_id: string; data: Record<string, unknown> }

export type AuthorizeResult = { status: string; data: Record<string, unknown> }

type ProcessorError = { error: string; code?: string; detail?: string }

/** A legacy payment service (medusa-interfaces' BasePaymentService / AbstractPaymentService). */
type LegacyPaymentService = {
  withTransaction(manager: EntityManager): LegacyPaymentService
  createPayment(context: unknown): Promise<Record<string, unknown>>
  updatePayment(data: Record<string, unknown>, context: unknown): Promise<Record<string, unknown>>
  authorizePayment(session: unknown, context: unknown): Promise<AuthorizeResult>
  getPaymentData(session: unknown): Promise<Record<string, unknown>>
  getStatus(data: Record<string, unknown>): Promise<string>
  deletePayment(session: unknown): Promise<unknown>
  cancelPayment(payment: unknown): Promise<unknown>
}

type Provider = { kind: "processor"; processor: AbstractPaymentProcessor } | { kind: "legacy"; service: LegacyPaymentService }

/** Core's own test for a processor's answer being an error (`"error" in result`). */
function isProcessorError(result: unknown): result is ProcessorError {
  return !!result && typeof result === "object" && "error" in (result as object)
}

function refusal(error: ProcessorError): Omit<Extract<ProviderOutcome<never>, { kind: "refused" }>, "latencyMs"> {
  // Core's wording (PaymentProviderService.throwFromPaymentProcessorError).
  const message = `${error.error}${error.detail ? `:\n${error.detail}` : ""}`
  return { kind: "refused", message, code: error.code }
}

/**
 * The plugin's one way to reach a payment provider: the provider's own methods,
 * called directly (processors and legacy payment services alike, as core calls
 * them), each bounded by a timeout that fires whatever shape the provider has.
 * Nothing of the provider or of the host is modified.
 */
export class ProviderClient {
  constructor(
    private readonly paymentProviderService: PaymentProviderService,
    private readonly timeoutMs: number
  ) {}

  /** Whether the backend has this provider installed (a `pp_<id>` service). */
  isInstalled(providerId: string): boolean {
    try {
      return !!this.paymentProviderService.retrieveProvider(providerId)
    } catch {
      return false
    }
  }

  initiate(providerId: string, context: ProcessorContext, manager: EntityManager) {
    return this.call(providerId, async (provider) => {
      if (provider.kind === "processor") {
        const result = await provider.processor.initiatePayment(processorInput(context, {}) as never)
        if (isProcessorError(result)) {
          return refusal(result)
        }
        const response = result as { session_data?: Record<string, unknown> }
        return { sessionData: (response.session_data ?? response) as Record<string, unknown> }
      }
      const data = await provider.service.withTransaction(manager).createPayment(context)
      return { sessionData: ((data as { session_data?: unknown })?.session_data ?? data) as Record<string, unknown> }
    })
  }

  /** `sessionData` undefined: the provider had nothing to change (core keeps the session as it is). */
  update(providerId: string, session: SessionLike, context: ProcessorContext, manager: EntityManager) {
    return this.call(providerId, async (provider) => {
      let result: unknown
      if (provider.kind === "processor") {
        result = await provider.processor.updatePayment(processorInput(context, session.data) as never)
        if (isProcessorError(result)) {
          return refusal(result)
        }
      } else {
        result = await provider.service.withTransaction(manager).updatePayment(session.data, context)
      }
      const sessionData = (result as { session_data?: unknown } | undefined)?.session_data ?? result
      return { sessionData: (sessionData || undefined) as Record<string, unknown> | undefined }
    })
  }

  authorize(providerId: string, session: SessionLike, context: Record<string, unknown>, manager: EntityManager) {
    return this.call<AuthorizeResult>(providerId, async (provider) => {
      if (provider.kind === "processor") {
        const result = await provider.processor.authorizePayment(session.data, context)
        if (isProcessorError(result)) {
          return refusal(result)
        }
        const { status, data } = result as AuthorizeResult
        return { status, data }
      }
      const { status, data } = await provider.service.withTransaction(manager).authorizePayment(session, context)
      return { status, data }
    })
  }

  /** What core stores as a payment's `data` when a session is authorized. */
  paymentData(providerId: string, session: SessionLike, manager: EntityManager) {
    return this.call<Record<string, unknown>>(providerId, async (provider) => {
      if (provider.kind === "processor") {
        const result = await provider.processor.retrievePayment(session.data)
        return isProcessorError(result) ? refusal(result) : (result as Record<string, unknown>)
      }
      return await provider.service.withTransaction(manager).getPaymentData(session)
    })
  }

  /** The provider's view of a session's status (what a reconciler asks after a crash). */
  status(providerId: string, session: SessionLike, manager: EntityManager) {
    return this.call<string>(providerId, async (provider) => {
      if (provider.kind === "processor") {
        return String(await provider.processor.getPaymentStatus(session.data))
      }
      return String(await provider.service.withTransaction(manager).getStatus(session.data))
    })
  }

  delete(providerId: string, session: SessionLike, manager: EntityManager) {
    return this.call<true>(providerId, async (provider) => {
      if (provider.kind === "processor") {
        const result = await provider.processor.deletePayment(session.data)
        return isProcessorError(result) ? refusal(result) : true
      }
      await provider.service.withTransaction(manager).deletePayment(session)
      return true
    })
  }

  /** Voids an authorization (used only for one whose session left the collection). */
  cancel(providerId: string, session: SessionLike, manager: EntityManager) {
    return this.call<true>(providerId, async (provider) => {
      if (provider.kind === "processor") {
        const result = await provider.processor.cancelPayment(session.data)
        return isProcessorError(result) ? refusal(result) : true
      }
      await provider.service.withTransaction(manager).cancelPayment({ provider_id: providerId, data: session.data })
      return true
    })
  }

  private provider(providerId: string): Provider {
    const provider = this.paymentProviderService.retrieveProvider(providerId) as unknown
    if (!provider) {
      throw new Error(`payment provider ${providerId} is not installed`)
    }
    // The same test core makes: one copy of @medusajs/medusa is shared with the host.
    return provider instanceof AbstractPaymentProcessor
      ? { kind: "processor", processor: provider }
      : { kind: "legacy", service: provider as LegacyPaymentService }
  }

  private async call<T>(
    providerId: string,
    work: (provider: Provider) => Promise<T | ReturnType<typeof refusal>>
  ): Promise<ProviderOutcome<T>> {
    const started = Date.now()
    const settle = (value: T | ReturnType<typeof refusal>): SettledOutcome<T> => {
      const latencyMs = Date.now() - started
      if (value && typeof value === "object" && (value as { kind?: unknown }).kind === "refused") {
        return { ...(value as ReturnType<typeof refusal>), latencyMs }
      }
      return { kind: "ok", value: value as T, latencyMs }
    }
    const fail = (err: unknown): SettledOutcome<T> => {
      const latencyMs = Date.now() - started
      if (isMedusaError(err)) {
        return { kind: "refused", message: err.message, code: (err as { code?: string }).code, type: err.type, latencyMs }
      }
      return { kind: "error", message: err instanceof Error ? err.message : String(err), latencyMs }
    }

    // Started inside a promise chain, so a method that throws synchronously is an `error` too.
    const running: Promise<SettledOutcome<T>> = Promise.resolve()
      .then(() => work(this.provider(providerId)))
      .then(settle, fail)

    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), this.timeoutMs)
    })
    const first = await Promise.race([running, timedOut])
    clearTimeout(timer)
    if (first === "timeout") {
      return { kind: "timeout", late: running, latencyMs: Date.now() - started }
    }
    return first
  }
}
