import { randomFillSync } from "crypto"

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
const RANDOM_CHARS = 16
/** Random bytes fetched at once and handed out 16 at a time. */
const POOL_SIZE = RANDOM_CHARS * 256

const pool = Buffer.alloc(POOL_SIZE)
let poolOffset = POOL_SIZE

/**
 * A Medusa id, `<prefix>_<ULID>` (10 characters of time, 16 random, Crockford
 * base32), as core's generateEntityId makes them — from one pooled buffer of
 * random bytes instead of a random call per character.
 */
export function entityId(prefix: string): string {
  if (poolOffset + RANDOM_CHARS > POOL_SIZE) {
    randomFillSync(pool)
    poolOffset = 0
  }
  let time = Date.now()
  let id = ""
  for (let i = 0; i < 10; i++) {
    id = CROCKFORD[time % 32] + id
    time = Math.floor(time / 32)
  }
  for (let i = 0; i < RANDOM_CHARS; i++) {
    id += CROCKFORD[pool[poolOffset + i] & 31]
  }
  poolOffset += RANDOM_CHARS
  return `${prefix}_${id}`
}
