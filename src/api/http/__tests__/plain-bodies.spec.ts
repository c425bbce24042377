import * as fc from "fast-check"
import { validator } from "@medusajs/medusa"
import { plainAuthorizeBody, plainBatchBody, plainCreateBody } from "../plain-bodies"
import {
  StorePaymentCollectionSessionsReq,
  StorePostPaymentCollectionsBatchSessionsAuthorizeReq,
  StorePostPaymentCollectionsBatchSessionsReq,
} from "../../store/payment-collections/validators"

// The cheap check must never accept what class-validator refuses, and what it
// builds must be what class-validator builds. It may pass on anything (then
// class-validator decides), so only its acceptances are compared.

async function classValidator(dto: new () => object, body: unknown): Promise<object | Error> {
  try {
    return await validator(dto as never, body as never)
  } catch (err) {
    return err as Error
  }
}

/** Mostly valid values, with the edges and wrong types class-validator must decide on. */
const validId = fc.oneof(fc.constantFrom("manual", "test-pay", "ps_01"), fc.string({ minLength: 1, maxLength: 40 }))
const id = fc.oneof(
  { weight: 6, arbitrary: validId },
  { weight: 1, arbitrary: fc.constantFrom("", " ", "\u0000", "a".repeat(255), "a".repeat(256), "🙂".repeat(128)) },
  { weight: 1, arbitrary: fc.string({ unit: "binary", minLength: 250, maxLength: 260 }) }
)
const anything = fc.oneof(fc.anything(), fc.integer(), fc.double(), fc.constant(null), fc.constant(undefined))
const withWrongs = <T>(valid: fc.Arbitrary<T>) =>
  fc.oneof({ weight: 8, arbitrary: valid as fc.Arbitrary<unknown> }, { weight: 1, arbitrary: anything })
const amount = withWrongs(
  fc.oneof(fc.integer({ min: 1, max: 100_000 }), fc.constantFrom(-1, 0, 1, 1.5, 2_147_483_647, 2_147_483_648, 1e21))
)
const session = fc
  .record({ provider_id: withWrongs(id), amount, session_id: withWrongs(id), extra: fc.option(anything, { freq: 10 }) }, { requiredKeys: ["provider_id", "amount"] })
  .map(({ extra, ...rest }) => (extra === null || extra === undefined ? rest : { ...rest, extra }))
/** Mostly short lists (as storefronts send), sometimes at and over the limit of 50. */
const list = <T>(item: fc.Arbitrary<T>) =>
  fc.oneof({ weight: 6, arbitrary: fc.array(item, { maxLength: 4 }) }, { weight: 1, arbitrary: fc.array(item, { minLength: 48, maxLength: 52 }) })
const sometimesExtraKey = <T extends object>(body: fc.Arbitrary<T>) =>
  fc.tuple(body, fc.option(anything, { freq: 8 })).map(([b, extra]) => (extra === null ? b : { ...b, other: extra }))

const cases: [string, (body: unknown) => object | undefined, new () => object, fc.Arbitrary<unknown>][] = [
  ["create", plainCreateBody, StorePaymentCollectionSessionsReq, sometimesExtraKey(fc.record({ provider_id: withWrongs(id) }))],
  [
    "batch",
    plainBatchBody,
    StorePostPaymentCollectionsBatchSessionsReq,
    fc.oneof(
      // What storefronts send: valid sessions, some naming their session.
      fc.record({
        sessions: fc.array(
          fc.record({ provider_id: validId, amount: fc.integer({ min: 1, max: 1_000_000 }), session_id: validId }, { requiredKeys: ["provider_id", "amount"] }),
          { minLength: 1, maxLength: 5 }
        ),
      }),
      sometimesExtraKey(fc.record({ sessions: withWrongs(list(session)) }))
    ),
  ],
  [
    "batch authorize",
    plainAuthorizeBody,
    StorePostPaymentCollectionsBatchSessionsAuthorizeReq,
    sometimesExtraKey(fc.record({ session_ids: withWrongs(list(withWrongs(id))) })),
  ],
]

describe.each(cases)("the cheap check of a %s body", (_name, plain, dto, bodies) => {
  it("accepts only what class-validator accepts, building the same DTO", async () => {
    let accepted = 0
    await fc.assert(
      fc.asyncProperty(fc.oneof({ weight: 4, arbitrary: bodies }, { weight: 1, arbitrary: anything }), async (body) => {
        const quick = plain(body)
        if (quick === undefined) return
        accepted++
        const checked = await classValidator(dto, body)
        expect(checked).not.toBeInstanceOf(Error)
        expect(quick).toBeInstanceOf(dto)
        expect(JSON.parse(JSON.stringify(quick))).toEqual(JSON.parse(JSON.stringify(checked)))
      }),
      { numRuns: 1000, seed: 20261201 }
    )
    // The comparison is about acceptances: enough of them must have been compared.
    expect(accepted).toBeGreaterThan(20)
  })

  it("accepts the bodies storefronts send", async () => {
    const sent = {
      create: { provider_id: "manual" },
      batch: { sessions: [{ provider_id: "manual", amount: 600 }, { provider_id: "test-pay", amount: 400, session_id: "ps_1" }] },
      "batch authorize": { session_ids: ["ps_1", "ps_2"] },
    }[_name]!
    expect(plain(sent)).toBeInstanceOf(dto)
  })
})
