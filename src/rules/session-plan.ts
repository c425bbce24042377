import { MedusaError } from "medusa-core-utils"

/** What the rules need to know about a session already in the collection. */
export type ExistingSession = {
  id: string
  provider_id: string
  amount: number | null
  status: string
  payment_authorized_at: Date | string | null
}

export type RequestedSession = {
  provider_id: string
  amount: number
  session_id?: string
}

/** What happens to one requested session, in the order they were requested. */
export type PlanStep<S extends ExistingSession> =
  | { kind: "create"; wanted: RequestedSession }
  | { kind: "update"; session: S; amount: number }
  | { kind: "keep"; session: S }

export type SessionPlan<S extends ExistingSession> = {
  steps: PlanStep<S>[]
  /** New sessions to initiate at their provider. */
  create: RequestedSession[]
  /** Existing sessions whose amount changes (provider update). */
  update: { session: S; amount: number }[]
  /** Existing sessions to delete at their provider and in the database. */
  remove: S[]
}

export function isAuthorized(session: ExistingSession): boolean {
  return session.status === "authorized" || !!session.payment_authorized_at
}

/**
 * Decides how to turn the collection's sessions into exactly the requested
 * ones. Pure: throws a MedusaError for a request that must be refused, before
 * anything is written or any provider is called.
 *
 * Rules (core's, with its gaps closed):
 * - amounts are positive integers that add up to the collection's amount;
 * - every provider must be usable (enabled for the region and installed);
 * - a `session_id` of the collection updates that session (same provider);
 * - a session listed without a known `session_id` reuses an unlisted session
 *   of the same provider and amount, else it is new — so sending the same
 *   batch twice changes nothing the second time (a session whose provider
 *   refused it is not reused: listing it again asks for a fresh attempt);
 * - an authorized session is never changed or removed: it must be listed again
 *   with its provider and amount.
 */
export function planSessions<S extends ExistingSession>(input: {
  collectionAmount: number
  existing: S[]
  requested: RequestedSession[]
  usableProviders: ReadonlySet<string>
}): SessionPlan<S> {
  const { collectionAmount, existing, requested, usableProviders } = input

  if (!requested.length) {
    throw new MedusaError(
      MedusaError.Types.INVALID_DATA,
      "sessions must contain at least one session"
    )
  }

  let total = 0
  for (const session of requested) {
    if (!Number.isSafeInteger(session.amount) || session.amount <= 0) {
      throw new MedusaError(
        MedusaError.Types.INVALID_DATA,
        `amount must be a positive integer, got ${session.amount}`
      )
    }
    total += session.amount
    if (!usableProviders.has(session.provider_id)) {
      throw new MedusaError(
        MedusaError.Types.INVALID_DATA,
        `Payment provider ${session.provider_id} is not available for this payment collection: it must be installed, enabled on the region and not switched off for payment collections`
      )
    }
  }
  if (total !== collectionAmount) {
    throw new MedusaError(
      MedusaError.Types.INVALID_DATA,
      `The sum of the sessions' amounts (${total}) must equal the payment collection's amount (${collectionAmount})`
    )
  }

  const listedIds = requested.flatMap((s) => (s.session_id ? [s.session_id] : []))
  const duplicate = listedIds.find((id, i) => listedIds.indexOf(id) !== i)
  if (duplicate) {
    throw new MedusaError(
      MedusaError.Types.INVALID_DATA,
      `Payment session ${duplicate} is listed more than once`
    )
  }

  const byId = new Map(existing.map((s) => [s.id, s]))
  const claimed = new Set<string>()
  const steps: (PlanStep<S> | undefined)[] = requested.map(() => undefined)

  // Sessions named by id first, so a reused session is never one named later.
  requested.forEach((wanted, index) => {
    const current = wanted.session_id ? byId.get(wanted.session_id) : undefined
    if (!current) {
      return
    }
    claimed.add(current.id)
    if (current.provider_id !== wanted.provider_id) {
      throw new MedusaError(
        MedusaError.Types.INVALID_DATA,
        `Payment session ${current.id} belongs to provider ${current.provider_id}, not ${wanted.provider_id}`
      )
    }
    if (current.amount === wanted.amount) {
      steps[index] = { kind: "keep", session: current }
    } else if (isAuthorized(current)) {
      throw new MedusaError(
        MedusaError.Types.NOT_ALLOWED,
        `Payment session ${current.id} is authorized; its amount cannot change`
      )
    } else {
      steps[index] = { kind: "update", session: current, amount: wanted.amount }
    }
  })

  requested.forEach((wanted, index) => {
    if (steps[index]) {
      return
    }
    const reusable = existing.find(
      (s) =>
        !claimed.has(s.id) &&
        s.provider_id === wanted.provider_id &&
        s.amount === wanted.amount &&
        s.status !== "error"
    )
    if (reusable) {
      claimed.add(reusable.id)
      steps[index] = { kind: "keep", session: reusable }
    } else {
      steps[index] = {
        kind: "create",
        wanted: { provider_id: wanted.provider_id, amount: wanted.amount },
      }
    }
  })

  const remove: S[] = []
  for (const session of existing) {
    if (claimed.has(session.id)) {
      continue
    }
    if (isAuthorized(session)) {
      throw new MedusaError(
        MedusaError.Types.NOT_ALLOWED,
        `Payment session ${session.id} is authorized and cannot be removed`
      )
    }
    remove.push(session)
  }

  const ordered = steps as PlanStep<S>[]
  return {
    steps: ordered,
    create: ordered.flatMap((s) => (s.kind === "create" ? [s.wanted] : [])),
    update: ordered.flatMap((s) =>
      s.kind === "update" ? [{ session: s.session, amount: s.amount }] : []
    ),
    remove,
  }
}
