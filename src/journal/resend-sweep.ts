import { FinderWindow } from "../providers/finders"
import { AttemptRow } from "./attempt-types"

/**
 * A call the provider's client may have sent twice on its own (see
 * ProviderClient.resendWindow) answered with one object; the other copy, if
 * any, is an object nobody names. A `find` row with this data looks for it in
 * the narrow window where it can be — a finder's list is consistent, so one
 * complete answer settles the row, without waiting for a window to settle.
 */
export function resendSweepData(window: FinderWindow): Record<string, unknown> {
  return { resend_window: { from: window.created_from.toISOString(), to: window.created_to.toISOString() } }
}

/** The window a `find` row looks in when it looks for a resent call's copy; null for any other row. */
export function resendWindowOf(row: Pick<AttemptRow, "provider_data">): FinderWindow | null {
  const window = (row.provider_data as { resend_window?: { from?: unknown; to?: unknown } } | null)?.resend_window
  if (typeof window?.from !== "string" || typeof window.to !== "string") {
    return null
  }
  return { created_from: new Date(window.from), created_to: new Date(window.to) }
}
