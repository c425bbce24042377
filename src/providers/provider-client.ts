import { AbstractPaymentProcessor, PaymentProviderService } from "@medusajs/medusa"
import { EntityManager } from "typeorm"
import { isMedusaError } from "../lib/errors"
import { FinderQuery, FinderResult, FinderWindow, finderOf } from "./finders"
import { ProcessorContext, processorInput } from "./session-input"
import { stripeClientOf, stripeResendWindow, stripeSessionState } from "./stripe-provider"

/**
 * What one provider call came to. A call never throws: a refusal, a crash and
 * a timeout are values the caller decides on, in one place.
 */
export type ProviderOutcome<T> =
  | { kind: "ok"; value: T; latencyMs: number }
  /**
   * The provider said no, and did nothing: a processor's PaymentProcessorError
   * naming its reason (a code), or a MedusaError a legacy service threw.
   */
  | { kind: "refused"; message: string; code?: string; type?: string; latencyMs: number }
  /**
   * The provider crashed, or its client failed (a reset, a 5xx), or it answered
   * an error that names no reason: it may have acted. medusa-payment-stripe
   * returns a connection failure as a PaymentProcessorError without a code.
   */
  | { kind: "error"; message: string; latencyMs: number }
  /** Still running after the timeout; `late` settles with what it finally came to. */
  | { kind: "timeout"; late: Promise<SettledOutcome<T>>; latencyMs: number }

export type SettledOutcome<T> = Exclude<ProviderOutcome<T>, { kind: "timeout" }>

export type SessionLike = { id: string; provider_id: string; data: Record<string, unknown> }

export type AuthorizeResult = { status: string; data: Record<string, unknown> }

/** A processor's answer to initiate or update: the session's data, and what to change on the customer. */
export type SessionAnswer = {
  /** Undefined (update only): the provider had nothing to change. */
  sessionData: Record<string, unknown> | undefined
  /** Metadata the provider asks to merge into the customer (medusa-payment-stripe: its `stripe_id`). */
  customerMetadata?: Record<string, unknown>
}

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

type WithoutLatency<T> = T extends unknown ? Omit<T, "latencyMs"> : never
type Failure = WithoutLatency<Exclude<SettledOutcome<never>, { kind: "ok" }>>

function refusal(error: ProcessorError): Failure {
  // Core's wording (PaymentProviderService.throwFromPaymentProcessorError).
  const detail = typeof error.detail === "string" ? error.detail : (error.detail as Error | undefined)?.message
  const message = `${error.error}${detail ? `:\n${detail}` : ""}`
  if (!error.code || error.code === "unknown") {
    // No reason given: the provider's client may have failed after the provider acted.
    return { kind: "error", message }
  }
  return { kind: "refused", message, code: error.code }
}

function isFailure(value: unknown): value is Failure {
  const kind = (value as { kind?: unknown } | null)?.kind
  return !!value && typeof value === "object" && (kind === "refused" || kind === "error")
}

/** The session data and customer changes of an initiate or update answer. */
function sessionAnswer(result: unknown): SessionAnswer {
  const response = result as { session_data?: unknown; update_requests?: { customer_metadata?: unknown } } | undefined
  const sessionData = (response?.session_data ?? response ?? undefined) as Record<string, unknown> | undefined
  const customerMetadata = response?.update_requests?.customer_metadata
  return {
    sessionData: sessionData || undefined,
    ...(customerMetadata && typeof customerMetadata === "object" ? { customerMetadata: customerMetadata as Record<string, unknown> } : {}),
  }
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
      let result: unknown
      if (provider.kind === "processor") {
        result = await provider.processor.initiatePayment(processorInput(context, {}) as never)
        if (isProcessorError(result)) {
          return refusal(result)
        }
      } else {
        result = await provider.service.withTransaction(manager).createPayment(context)
      }
      const answer = sessionAnswer(result)
      return { ...answer, sessionData: answer.sessionData ?? {} }
    })
  }

  /** `sessionData` undefined: the provider had nothing to change (core keeps the session as it is). */
  update(providerId: string, session: SessionLike, context: ProcessorContext, manager: EntityManager) {
    return this.call<SessionAnswer>(providerId, async (provider) => {
      if (provider.kind === "legacy") {
        return sessionAnswer(await provider.service.withTransaction(manager).updatePayment(session.data, context))
      }
      const result = await provider.processor.updatePayment(processorInput(context, session.data) as never)
      return isProcessorError(result) ? refusal(result) : sessionAnswer(result)
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

  /**
   * What the provider says of a session now: its status, where `authorized`
   * means the shopper's confirmation holds money. For medusa-payment-stripe,
   * read from the intent itself, also `captured` (the money is taken) and
   * `processing` (confirmed, settling, cannot be canceled).
   */
  sessionState(providerId: string, session: SessionLike, manager: EntityManager) {
    const stripe = stripeClientOf(this.lookUp(providerId))
    if (!stripe) {
      return this.status(providerId, session, manager)
    }
    return this.call<string>(providerId, () => stripeSessionState(stripe, session.data))
  }

  /**
   * Whether an update may replace the provider's object instead of changing
   * it: medusa-payment-stripe's updatePayment creates a new intent when the
   * customer it is given is not the intent's (always for a guest), and the
   * replaced one is canceled — a hold the shopper put on it included.
   */
  replacesOnUpdate(providerId: string): boolean {
    return stripeClientOf(this.lookUp(providerId)) !== null
  }

  /** Whether the provider can be asked which sessions it holds for a collection (see finders.ts). */
  hasFinder(providerId: string): boolean {
    return finderOf(this.lookUp(providerId)) !== null
  }

  /**
   * For a provider whose client may send a create twice on its own (the
   * built-in Stripe one, see stripeResendWindow): where the finder may find
   * the copy that was never answered, next to the object `data` answered
   * after `latencyMs`. Null for every other provider.
   */
  resendWindow(providerId: string, data: Record<string, unknown> | null | undefined, latencyMs: number): FinderWindow | null {
    if (!data || !stripeClientOf(this.lookUp(providerId))) {
      return null
    }
    return stripeResendWindow(data, latencyMs)
  }

  /** The provider's sessions of a collection created within a window (see finders.ts). */
  find(providerId: string, query: FinderQuery) {
    return this.call<FinderResult>(providerId, async () => {
      const finder = finderOf(this.lookUp(providerId))
      if (!finder) {
        throw new Error(`payment provider ${providerId} has no finder`)
      }
      return await finder(query)
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

  private lookUp(providerId: string): unknown {
    try {
      return this.paymentProviderService.retrieveProvider(providerId) as unknown
    } catch {
      return undefined
    }
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
    work: (provider: Provider) => Promise<T | Failure>
  ): Promise<ProviderOutcome<T>> {
    const started = Date.now()
    const settle = (value: T | Failure): SettledOutcome<T> => {
      const latencyMs = Date.now() - started
      if (isFailure(value)) {
        return { ...value, latencyMs } as SettledOutcome<T>
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
