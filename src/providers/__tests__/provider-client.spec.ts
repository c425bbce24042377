import { AbstractPaymentProcessor } from "@medusajs/medusa"
import { ProviderClient } from "../provider-client"
import { processorContext } from "../session-input"

// The provider client's rules, with providers of every shape: what a call
// comes to (ok, refused, error, timeout) and that the timeout fires whatever
// the provider is made of. No database: the manager is never used by these
// providers.

const manager = {} as never
const collection = { id: "paycol_1", region_id: "reg_1", currency_code: "usd" }
const customer = { id: "cus_1", email: "a@b.c", first_name: null, last_name: null, phone: null, has_account: true, metadata: null }
const context = processorContext(collection, 1000, { customer, email: "a@b.c" })
const session = { id: "ps_1", provider_id: "p", data: { id: "pi_1" } }

class Processor extends AbstractPaymentProcessor {
  static identifier = "p"
  constructor(private readonly behaviour: Record<string, (...args: unknown[]) => unknown>) {
    super({} as never)
  }
  async initiatePayment(input: unknown) {
    return this.behaviour.initiatePayment(input) as never
  }
  async authorizePayment(data: unknown, ctx: unknown) {
    return this.behaviour.authorizePayment(data, ctx) as never
  }
  async deletePayment(data: unknown) {
    return this.behaviour.deletePayment(data) as never
  }
  async updatePayment(input: unknown) {
    return this.behaviour.updatePayment?.(input) as never
  }
  async cancelPayment() {
    return {} as never
  }
  async capturePayment() {
    return {} as never
  }
  async refundPayment() {
    return {} as never
  }
  async retrievePayment(data: unknown) {
    return data as never
  }
  async getPaymentStatus() {
    return "pending" as never
  }
  async updatePaymentData() {
    return {} as never
  }
}

function clientFor(provider: unknown, timeoutMs = 200) {
  const paymentProviderService = {
    retrieveProvider: (id: string) => {
      if (id !== "p") throw new Error(`no provider ${id}`)
      return provider
    },
  }
  return new ProviderClient(paymentProviderService as never, timeoutMs)
}

describe("ProviderClient", () => {
  it("answers a processor's session data as ok, with core's context and the customer who pays", async () => {
    let received: any
    const client = clientFor(
      new Processor({ initiatePayment: (input) => ((received = input), { session_data: { id: "pi_1" } }) })
    )
    const outcome = await client.initiate("p", context, manager)
    expect(outcome).toMatchObject({ kind: "ok", value: { sessionData: { id: "pi_1" } } })
    expect(received).toEqual({
      amount: 1000,
      context: {},
      currency_code: "usd",
      customer,
      email: "a@b.c",
      billing_address: undefined,
      resource_id: "paycol_1",
      paymentSessionData: {},
    })
  })

  it("passes on the customer metadata a processor asks for (medusa-payment-stripe's stripe_id)", async () => {
    const client = clientFor(
      new Processor({
        initiatePayment: () => ({ session_data: { id: "pi_1" }, update_requests: { customer_metadata: { stripe_id: "cus_s" } } }),
      })
    )
    expect(await client.initiate("p", context, manager)).toMatchObject({
      kind: "ok",
      value: { sessionData: { id: "pi_1" }, customerMetadata: { stripe_id: "cus_s" } },
    })
  })

  it("takes a PaymentProcessorError that names no reason for a failure that may have acted, not a refusal", async () => {
    for (const code of [undefined, "", "unknown"]) {
      const client = clientFor(
        new Processor({ initiatePayment: () => ({ error: "An error occurred in InitiatePayment", code, detail: new Error("socket hang up") }) })
      )
      expect(await client.initiate("p", context, manager)).toMatchObject({
        kind: "error",
        message: "An error occurred in InitiatePayment:\nsocket hang up",
      })
    }
  })

  it("answers a PaymentProcessorError as refused, with core's message and code", async () => {
    const client = clientFor(
      new Processor({ initiatePayment: () => ({ error: "card declined", code: "declined", detail: "insufficient funds" }) })
    )
    expect(await client.initiate("p", context, manager)).toMatchObject({
      kind: "refused",
      message: "card declined:\ninsufficient funds",
      code: "declined",
    })
  })

  it("answers a throw — asynchronous or synchronous — as error", async () => {
    const asyncThrow = clientFor(new Processor({ authorizePayment: () => Promise.reject(new Error("boom")) }))
    expect(await asyncThrow.authorize("p", session, {}, manager)).toMatchObject({ kind: "error", message: "boom" })

    const syncThrow = clientFor({
      withTransaction: () => {
        throw new Error("sync boom")
      },
    })
    expect(await syncThrow.authorize("p", session, {}, manager)).toMatchObject({ kind: "error", message: "sync boom" })
  })

  it("answers a MedusaError a legacy service throws as refused, keeping its type", async () => {
    const legacy = {
      withTransaction: () => legacy,
      createPayment: () => Promise.reject(Object.assign(new Error("no such card"), { type: "not_allowed", code: "x" })),
    }
    expect(await clientFor(legacy).initiate("p", context, manager)).toMatchObject({
      kind: "refused",
      type: "not_allowed",
      message: "no such card",
    })
  })

  it("times out a provider whose methods are instance fields, and still hands over its late answer", async () => {
    let answer!: (value: unknown) => void
    const fields = Object.create(Processor.prototype)
    fields.deletePayment = () => new Promise((resolve) => (answer = resolve))
    const client = clientFor(fields, 50)

    const started = Date.now()
    const outcome = await client.delete("p", session, manager)
    expect(Date.now() - started).toBeGreaterThanOrEqual(45)
    expect(outcome.kind).toBe("timeout")

    answer({ id: "pi_1" })
    const late = await (outcome as Extract<typeof outcome, { kind: "timeout" }>).late
    expect(late).toMatchObject({ kind: "ok", value: true })
  })

  it("times out a legacy service that never answers", async () => {
    const legacy = { withTransaction: () => legacy, updatePayment: () => new Promise(() => undefined) }
    const outcome = await clientFor(legacy, 30).update("p", session, context, manager)
    expect(outcome.kind).toBe("timeout")
  })

  it("calls a processor's update with the session's data, and reads no update as no data", async () => {
    let received: any
    const client = clientFor(new Processor({ updatePayment: (input) => ((received = input), undefined) }))
    const outcome = await client.update("p", session, context, manager)
    expect(outcome).toMatchObject({ kind: "ok", value: { sessionData: undefined } })
    expect(received.paymentSessionData).toEqual({ id: "pi_1" })
  })

  it("tells whether a provider is installed", () => {
    const client = clientFor(new Processor({}))
    expect(client.isInstalled("p")).toBe(true)
    expect(client.isInstalled("nope")).toBe(false)
  })
})
