import { AbstractPaymentProcessor } from "@medusajs/medusa"
import { AsyncLocalStorage } from "async_hooks"

/** What a provider did that the plugin may have to take back. */
export type ProviderEffect = {
  kind: "initiated" | "authorized" | "updated"
  /** The provider's session data after the call. */
  data: Record<string, unknown>
}

export interface ProviderCallObserver {
  providerCallStarted(): void
  providerCallFinished(): void
  providerDid(effect: ProviderEffect): void
}

const observers = new AsyncLocalStorage<ProviderCallObserver>()
const INSTRUMENTED = Symbol.for("medusa-plugin-payment-collections.instrumented")
const WRAPPER = Symbol.for("medusa-plugin-payment-collections.wrapper")

/**
 * Runs `work` (a call into the host's paymentProviderService) so that the
 * provider calls it makes report to `observer`. Core writes a session's row
 * inside the same call that asks the provider, so only the provider itself can
 * tell the plugin what it created when core's write, the commit or the clock
 * fails afterwards — and a call that answers after its timeout still reports.
 */
export function observeProviderCalls<T>(
  observer: ProviderCallObserver,
  work: () => Promise<T>
): Promise<T> {
  return observers.run(observer, work)
}

type Interpret = (result: any) => ProviderEffect | undefined

function isProcessorError(result: unknown): boolean {
  return !!result && typeof result === "object" && "error" in result
}

function sessionData(result: any): Record<string, unknown> {
  return result?.session_data ?? result
}

/**
 * Wraps the provider's methods on its class's prototype, once per class, so
 * that every instance (legacy services' withTransaction() clones included)
 * reports to the observer of the current async context. Outside the plugin's
 * calls there is no observer and the wrappers only pass through: core's own
 * cart checkout behaves exactly as before.
 */
export function instrumentProvider(provider: object): void {
  const proto = Object.getPrototypeOf(provider)
  if (!proto || Object.prototype.hasOwnProperty.call(proto, INSTRUMENTED)) {
    return
  }
  const isProcessor = provider instanceof AbstractPaymentProcessor

  const initiated: Interpret = (result) =>
    isProcessor && isProcessorError(result)
      ? undefined
      : { kind: "initiated", data: sessionData(result) }
  const authorized: Interpret = (result) =>
    result && !isProcessorError(result) && result.status === "authorized"
      ? { kind: "authorized", data: result.data }
      : undefined
  const updated: Interpret = (result) =>
    result && !isProcessorError(result)
      ? { kind: "updated", data: sessionData(result) }
      : undefined
  const none: Interpret = () => undefined

  const methods: Record<string, Interpret> = isProcessor
    ? {
        initiatePayment: initiated,
        authorizePayment: authorized,
        updatePayment: updated,
        deletePayment: none,
        cancelPayment: none,
        retrievePayment: none,
      }
    : {
        createPayment: initiated,
        authorizePayment: authorized,
        updatePayment: updated,
        deletePayment: none,
        cancelPayment: none,
        getPaymentData: none,
      }

  for (const [name, interpret] of Object.entries(methods)) {
    const original = (proto as Record<string, unknown>)[name] as
      | ((...args: unknown[]) => Promise<unknown>) & { [WRAPPER]?: true }
      | undefined
    // Inherited from a provider class instrumented already: it reports once.
    if (typeof original !== "function" || original[WRAPPER]) {
      continue
    }
    const wrapper = async function (this: unknown, ...args: unknown[]) {
      const observer = observers.getStore()
      if (!observer) {
        return await original.apply(this, args)
      }
      observer.providerCallStarted()
      try {
        const result = await original.apply(this, args)
        const effect = interpret(result)
        if (effect) {
          observer.providerDid(effect)
        }
        return result
      } finally {
        observer.providerCallFinished()
      }
    }
    Object.defineProperty(wrapper, WRAPPER, { value: true })
    Object.defineProperty(proto, name, { configurable: true, writable: true, value: wrapper })
  }
  Object.defineProperty(proto, INSTRUMENTED, { value: true })
}
