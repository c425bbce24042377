/**
 * JSON with object keys sorted, so two values that differ only in key order
 * (a provider's answer and PostgreSQL's jsonb, say) serialize the same.
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) {
    return `[${value.map(canonicalJson).join(",")}]`
  }
  if (value && typeof value === "object") {
    const entries = Object.keys(value as object)
      .sort()
      .map(
        (k) =>
          `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`
      )
    return `{${entries.join(",")}}`
  }
  return JSON.stringify(value ?? null)
}
