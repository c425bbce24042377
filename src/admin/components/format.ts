/** An amount in the currency's smallest unit, as Medusa stores it, for people: 4000 usd → "$40.00". */
export function formatAmount(amount: number | null | undefined, currencyCode: string): string {
  if (amount === null || amount === undefined) {
    return "–"
  }
  try {
    const format = new Intl.NumberFormat("en-US", {
      style: "currency",
      currency: currencyCode.toUpperCase(),
    })
    const digits = format.resolvedOptions().maximumFractionDigits ?? 2
    return format.format(amount / 10 ** digits)
  } catch {
    return `${amount} ${currencyCode.toUpperCase()}`
  }
}

export function formatTime(iso: string | null | undefined): string {
  if (!iso) {
    return "–"
  }
  const date = new Date(iso)
  return Number.isNaN(date.getTime())
    ? iso
    : date.toLocaleString("en-US", {
        month: "short",
        day: "numeric",
        year: "numeric",
        hour: "2-digit",
        minute: "2-digit",
        second: "2-digit",
      })
}

/**
 * What went wrong, for a toast or a message: Medusa's error body `{ type, message }`
 * when the server answered (medusa-js rejects with axios' error), else the error's own text.
 */
export function errorMessage(error: unknown): string {
  const answer = (error as { response?: { status?: number; data?: { message?: unknown } } } | null)
    ?.response
  if (answer) {
    const message = typeof answer.data?.message === "string" ? answer.data.message : ""
    return message ? `${message} (${answer.status})` : `The server answered ${answer.status}`
  }
  if (error instanceof Error && error.message) {
    return error.message
  }
  return "The request failed"
}
