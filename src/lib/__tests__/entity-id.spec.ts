import { entityId } from "../entity-id"

describe("entityId", () => {
  it("makes Medusa's id shape: prefix, underscore, 26 Crockford base32 characters, time first", () => {
    const before = Date.now()
    const id = entityId("ps")
    expect(id).toMatch(/^ps_[0-9A-HJKMNP-TV-Z]{26}$/)
    const time = [...id.slice(3, 13)].reduce((t, c) => t * 32 + "0123456789ABCDEFGHJKMNPQRSTVWXYZ".indexOf(c), 0)
    expect(time).toBeGreaterThanOrEqual(before)
    expect(time).toBeLessThanOrEqual(Date.now())
  })

  it("never repeats over many ids made in the same milliseconds (the random pool is refilled)", () => {
    const ids = new Set(Array.from({ length: 20_000 }, () => entityId("pay")))
    expect(ids.size).toBe(20_000)
  })
})
