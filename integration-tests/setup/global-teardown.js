"use strict"

const fs = require("fs")
const path = require("path")
const { dropDatabase } = require("../../scripts/lib/postgres")

// With REDIS_URL the host keeps one event queue per database (see
// host/medusa-config.js); its keys would otherwise pile up in Redis run after run.
async function dropEventQueue(redisUrl, dbName) {
  const eventBusDir = path.dirname(require.resolve("@medusajs/event-bus-redis/package.json"))
  const Redis = require(require.resolve("ioredis", { paths: [eventBusDir] }))
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 })
  await redis.connect()
  try {
    const keys = []
    const pattern = `RedisEventBusService:pcp-events-${dbName}:*`
    for await (const batch of redis.scanStream({ match: pattern, count: 500 })) keys.push(...batch)
    if (keys.length) await redis.del(...keys)
  } finally {
    redis.disconnect()
  }
}

// Undoes setUpHarness in reverse order; every step runs even if one fails.
async function tearDownHarness(name) {
  const ctx = globalThis.__PCP_HARNESS__?.[name]
  if (!ctx) return
  delete globalThis.__PCP_HARNESS__[name]
  const errors = []
  const attempt = async (fn) => {
    try {
      await fn()
    } catch (err) {
      errors.push(err)
    }
  }

  if (ctx.backend) await attempt(() => ctx.backend.stop())
  if (process.env.REDIS_URL && ctx.dbName) {
    await attempt(() => dropEventQueue(process.env.REDIS_URL, ctx.dbName))
  }
  if (ctx.envFile) await attempt(() => fs.rmSync(ctx.envFile, { force: true }))
  if (ctx.pgbouncer) await attempt(() => ctx.pgbouncer.stop())
  if (ctx.pg && ctx.dbName && process.env.PCP_KEEP_DB !== "1") {
    await attempt(() => dropDatabase(ctx.pg.baseUrl, ctx.dbName))
  }
  if (ctx.pg) await attempt(() => ctx.pg.stop())
  if (ctx.psp) await attempt(() => ctx.psp.stop())
  if (ctx.stripe) await attempt(() => ctx.stripe.stop())

  if (errors.length) {
    throw new Error(`global teardown (${name}): ${errors.map((e) => e.message).join("; ")}`)
  }
}

module.exports = async function globalTeardown() {
  await tearDownHarness("integration")
}
module.exports.tearDownHarness = tearDownHarness
