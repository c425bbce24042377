import { statusForAuthorizedAmount } from "../collection-status"
import { planSessions, ExistingSession, SessionPlan } from "../session-plan"

/** The existing sessions a plan keeps as they are. */
function kept<S extends ExistingSession>(plan: SessionPlan<S>): S[] {
  return plan.steps.flatMap((step) => (step.kind === "keep" ? [step.session] : []))
}

const usable = new Set(["manual", "test-pay"])

function session(overrides: Partial<ExistingSession> = {}): ExistingSession {
  return {
    id: "ps_1",
    provider_id: "manual",
    amount: 1000,
    status: "pending",
    payment_authorized_at: null,
    ...overrides,
  }
}

function errorOf(fn: () => unknown): { type: string; message: string } {
  try {
    fn()
  } catch (err) {
    return err as { type: string; message: string }
  }
  throw new Error("expected a MedusaError")
}

describe("planSessions", () => {
  it("creates a session for a collection that has none", () => {
    const plan = planSessions({
      collectionAmount: 1000,
      existing: [],
      requested: [{ provider_id: "manual", amount: 1000 }],
      usableProviders: usable,
    })
    expect(plan.create).toEqual([{ provider_id: "manual", amount: 1000 }])
    expect(plan.update).toEqual([])
    expect(kept(plan)).toEqual([])
    expect(plan.remove).toEqual([])
  })

  it("keeps an unchanged session and removes the ones not listed", () => {
    const unchanged = session({ id: "ps_keep", amount: 600 })
    const dropped = session({ id: "ps_drop", amount: 400, provider_id: "test-pay" })
    const plan = planSessions({
      collectionAmount: 1000,
      existing: [unchanged, dropped],
      requested: [
        { provider_id: "manual", amount: 600, session_id: "ps_keep" },
        { provider_id: "test-pay", amount: 300 },
        { provider_id: "manual", amount: 100 },
      ],
      usableProviders: usable,
    })
    expect(kept(plan)).toEqual([unchanged])
    expect(plan.create).toEqual([
      { provider_id: "test-pay", amount: 300 },
      { provider_id: "manual", amount: 100 },
    ])
    expect(plan.remove).toEqual([dropped])
    expect(plan.steps.map((s) => s.kind)).toEqual(["keep", "create", "create"])
  })

  it("reuses an unlisted session of the same provider and amount, so the same batch twice changes nothing", () => {
    const a = session({ id: "ps_a", amount: 400, provider_id: "test-pay" })
    const b = session({ id: "ps_b", amount: 600 })
    const plan = planSessions({
      collectionAmount: 1000,
      existing: [a, b],
      requested: [
        { provider_id: "manual", amount: 600 },
        { provider_id: "test-pay", amount: 400 },
      ],
      usableProviders: usable,
    })
    expect(plan.create).toEqual([])
    expect(plan.remove).toEqual([])
    expect(plan.steps).toEqual([
      { kind: "keep", session: b },
      { kind: "keep", session: a },
    ])
  })

  it("does not reuse a session its provider refused", () => {
    const refused = session({ id: "ps_err", amount: 1000, status: "error" })
    const plan = planSessions({
      collectionAmount: 1000,
      existing: [refused],
      requested: [{ provider_id: "manual", amount: 1000 }],
      usableProviders: usable,
    })
    expect(plan.create).toEqual([{ provider_id: "manual", amount: 1000 }])
    expect(plan.remove).toEqual([refused])
  })

  it("refuses the same unknown session_id listed twice", () => {
    const err = errorOf(() =>
      planSessions({
        collectionAmount: 1000,
        existing: [],
        requested: [
          { provider_id: "manual", amount: 500, session_id: "ps_other" },
          { provider_id: "manual", amount: 500, session_id: "ps_other" },
        ],
        usableProviders: usable,
      })
    )
    expect(err.type).toBe("invalid_data")
  })

  it("never reuses a session that another entry names by id", () => {
    const a = session({ id: "ps_a", amount: 500 })
    const plan = planSessions({
      collectionAmount: 1000,
      existing: [a],
      requested: [
        { provider_id: "manual", amount: 500 },
        { provider_id: "manual", amount: 500, session_id: "ps_a" },
      ],
      usableProviders: usable,
    })
    expect(plan.steps).toEqual([
      { kind: "create", wanted: { provider_id: "manual", amount: 500 } },
      { kind: "keep", session: a },
    ])
  })

  it("updates a listed session whose amount changes", () => {
    const current = session({ id: "ps_1", amount: 1000 })
    const plan = planSessions({
      collectionAmount: 1000,
      existing: [current],
      requested: [
        { provider_id: "manual", amount: 700, session_id: "ps_1" },
        { provider_id: "test-pay", amount: 300 },
      ],
      usableProviders: usable,
    })
    expect(plan.update).toEqual([{ session: current, amount: 700 }])
  })

  it("refuses amounts that do not add up to the collection's amount", () => {
    const err = errorOf(() =>
      planSessions({
        collectionAmount: 1000,
        existing: [],
        requested: [{ provider_id: "manual", amount: 999 }],
        usableProviders: usable,
      })
    )
    expect(err.type).toBe("invalid_data")
  })

  it.each([0, -5, 1.5, Number.NaN])("refuses the amount %p", (amount) => {
    const err = errorOf(() =>
      planSessions({
        collectionAmount: 1000,
        existing: [],
        requested: [{ provider_id: "manual", amount }],
        usableProviders: usable,
      })
    )
    expect(err.type).toBe("invalid_data")
  })

  it("refuses a provider that is not usable instead of dropping it", () => {
    const err = errorOf(() =>
      planSessions({
        collectionAmount: 1000,
        existing: [],
        requested: [{ provider_id: "stripe", amount: 1000 }],
        usableProviders: usable,
      })
    )
    expect(err.type).toBe("invalid_data")
    expect(err.message).toContain("stripe")
  })

  it("refuses an empty list", () => {
    const err = errorOf(() =>
      planSessions({
        collectionAmount: 1000,
        existing: [],
        requested: [],
        usableProviders: usable,
      })
    )
    expect(err.type).toBe("invalid_data")
  })

  it("refuses the same session listed twice", () => {
    const err = errorOf(() =>
      planSessions({
        collectionAmount: 1000,
        existing: [session({ id: "ps_1", amount: 500 })],
        requested: [
          { provider_id: "manual", amount: 500, session_id: "ps_1" },
          { provider_id: "manual", amount: 500, session_id: "ps_1" },
        ],
        usableProviders: usable,
      })
    )
    expect(err.type).toBe("invalid_data")
  })

  it("refuses moving a session to another provider", () => {
    const err = errorOf(() =>
      planSessions({
        collectionAmount: 1000,
        existing: [session({ id: "ps_1" })],
        requested: [{ provider_id: "test-pay", amount: 1000, session_id: "ps_1" }],
        usableProviders: usable,
      })
    )
    expect(err.type).toBe("invalid_data")
  })

  it("never removes an authorized session", () => {
    const authorized = session({ id: "ps_auth", amount: 400, status: "authorized" })
    const err = errorOf(() =>
      planSessions({
        collectionAmount: 1000,
        existing: [authorized],
        requested: [{ provider_id: "manual", amount: 1000 }],
        usableProviders: usable,
      })
    )
    expect(err.type).toBe("not_allowed")
  })

  it("never changes the amount of an authorized session", () => {
    const authorized = session({ id: "ps_auth", amount: 400, status: "authorized" })
    const err = errorOf(() =>
      planSessions({
        collectionAmount: 1000,
        existing: [authorized],
        requested: [
          { provider_id: "manual", amount: 500, session_id: "ps_auth" },
          { provider_id: "test-pay", amount: 500 },
        ],
        usableProviders: usable,
      })
    )
    expect(err.type).toBe("not_allowed")
  })

  it("lets the rest be rearranged around an authorized session", () => {
    const authorized = session({ id: "ps_auth", amount: 400, status: "authorized" })
    const failed = session({ id: "ps_err", amount: 600, status: "error", provider_id: "test-pay" })
    const plan = planSessions({
      collectionAmount: 1000,
      existing: [authorized, failed],
      requested: [
        { provider_id: "manual", amount: 400, session_id: "ps_auth" },
        { provider_id: "manual", amount: 600 },
      ],
      usableProviders: usable,
    })
    expect(kept(plan)).toEqual([authorized])
    expect(plan.create).toEqual([{ provider_id: "manual", amount: 600 }])
    expect(plan.remove).toEqual([failed])
  })
})

describe("statusForAuthorizedAmount", () => {
  it("follows core's statuses", () => {
    expect(statusForAuthorizedAmount(0, 1000)).toBe("awaiting")
    expect(statusForAuthorizedAmount(400, 1000)).toBe("partially_authorized")
    expect(statusForAuthorizedAmount(1000, 1000)).toBe("authorized")
  })
})
