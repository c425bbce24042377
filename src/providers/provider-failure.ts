import { MedusaError } from "medusa-core-utils"
import { paymentProviderUnavailable } from "../lib/errors"
import { ProviderOutcome } from "./provider-client"

type Failure = Exclude<ProviderOutcome<unknown>, { kind: "ok" }>

/**
 * The one place where a provider's failure becomes the error the client sees:
 * a refusal is the client's 4xx (core's `invalid_data`, or the type a legacy
 * service threw), a crash is 502 and no answer in time is 504, both naming the
 * provider.
 */
export function providerFailure(
  providerId: string,
  action: string,
  outcome: Failure,
  timeoutMs: number
): MedusaError {
  switch (outcome.kind) {
    case "refused":
      return new MedusaError(
        (outcome.type as never) ?? MedusaError.Types.INVALID_DATA,
        outcome.message,
        outcome.code
      )
    case "error":
      return paymentProviderUnavailable(
        providerId,
        502,
        `Payment provider ${providerId} failed to ${action}: ${outcome.message}`
      )
    case "timeout":
      return paymentProviderUnavailable(
        providerId,
        504,
        `Payment provider ${providerId} did not answer within ${timeoutMs} ms when asked to ${action}`
      )
  }
}
