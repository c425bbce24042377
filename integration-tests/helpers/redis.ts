import path from "path"
import { testEnv } from "./env"

/**
 * Deletes this run's Redis event-bus queue (host/medusa-config.js names it
 * `pcp-events-<database>`). global-teardown only does it when jest itself runs
 * with REDIS_URL; a spec that starts extra backends with REDIS_URL calls this
 * in afterAll, after stopping them.
 */
export async function dropRunEventQueue(redisUrl: string): Promise<void> {
  await withQueueKeys(redisUrl, async (redis, keys) => {
    if (keys.length) await redis.del(...keys)
  })
}

/** The Redis keys of this run's event-bus queue (proof that a backend uses the Redis event bus). */
export async function runEventQueueKeys(redisUrl: string): Promise<string[]> {
  return withQueueKeys(redisUrl, async (_redis, keys) => keys)
}

async function withQueueKeys<T>(redisUrl: string, fn: (redis: any, keys: string[]) => Promise<T>): Promise<T> {
  const eventBusDir = path.dirname(require.resolve("@medusajs/event-bus-redis/package.json"))
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const Redis = require(require.resolve("ioredis", { paths: [eventBusDir] }))
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 })
  await redis.connect()
  try {
    const keys: string[] = []
    const pattern = `RedisEventBusService:pcp-events-${testEnv().databaseName}:*`
    for await (const batch of redis.scanStream({ match: pattern, count: 500 })) keys.push(...batch)
    return await fn(redis, keys)
  } finally {
    redis.disconnect()
  }
}

export interface TestRedis {
  url: string
  /** true when the spec started this redis-server itself (else PCP_TEST_REDIS_URL's) */
  own: boolean
  stop(): Promise<void>
}

/**
 * A Redis for a spec that needs one (the Redis event bus): PCP_TEST_REDIS_URL
 * when set, else a redis-server of the spec's own on a free port (nothing
 * persisted), else an error saying how to get one (scripts/lib/redis.js).
 */
export function testRedis(): Promise<TestRedis> {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  return require(path.resolve(__dirname, "../../scripts/lib/redis.js")).startRedis()
}
