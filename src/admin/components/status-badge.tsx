import { StatusBadge } from "@medusajs/ui"

type Color = "green" | "red" | "blue" | "orange" | "grey" | "purple"

// Statuses of payment collections, sessions, order edits and attempt outcomes.
const COLORS: Record<string, Color> = {
  authorized: "green",
  confirmed: "green",
  captured: "green",
  ok: "green",
  partially_authorized: "orange",
  awaiting: "orange",
  pending: "orange",
  requires_more: "orange",
  requested: "blue",
  created: "grey",
  not_paid: "grey",
  canceled: "grey",
  declined: "red",
  error: "red",
  refused: "red",
  timeout: "red",
  needs_attention: "red",
  uncertain: "orange",
}

export const Status = ({ value }: { value: string | null }) => {
  const text = value ?? "unknown"
  return (
    <StatusBadge color={COLORS[text] ?? "grey"} className="whitespace-nowrap">
      {text.replace(/_/g, " ")}
    </StatusBadge>
  )
}
