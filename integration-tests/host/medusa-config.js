// Medusa 1.20 host fixture for tests, the demo and the benchmark. It has no
// node_modules of its own: packages resolve from the repository root.
const fs = require("fs")
const path = require("path")

const REPO_ROOT = path.resolve(__dirname, "../..")
// Four payment providers backed by the fake PSP at TEST_PAY_PSP_URL (see
// integration-tests/fixtures/fake-psp): test-pay (a payment processor),
// test-fields (a processor whose methods are instance fields), test-legacy
// (a legacy payment service), all three with the optional finder, and
// test-nofind (test-pay without it).
const TEST_PAYMENT_PROVIDERS = path.resolve(__dirname, "../fixtures/test-payment-providers")
// A flat-rate fulfillment provider ("test-ship"), so that carts can be checked out
// with a shipping method, and a subscriber recording delivered events.
const TEST_FULFILLMENT = path.resolve(__dirname, "../fixtures/test-fulfillment-provider")
const EVENT_RECORDER = path.resolve(__dirname, "../fixtures/event-recorder")
// Records the providers' classes at boot, so a spec can prove the plugin changes none.
const HOST_INTROSPECTION = path.resolve(__dirname, "../fixtures/host-introspection")

const DATABASE_URL = process.env.DATABASE_URL
const REDIS_URL = process.env.REDIS_URL
// Any origin: parseCorsOrigins turns "/.../" into a RegExp.
const CORS = process.env.HOST_CORS || "/.*/"

function databaseName(url) {
  try {
    return decodeURIComponent(new URL(url).pathname.slice(1)) || "default"
  } catch {
    return "default"
  }
}

const plugins = [
  "medusa-payment-manual",
  { resolve: TEST_PAYMENT_PROVIDERS, options: {} },
  { resolve: TEST_FULFILLMENT, options: {} },
  { resolve: EVENT_RECORDER, options: {} },
  { resolve: HOST_INTROSPECTION, options: {} },
]
// The real medusa-payment-stripe (providers stripe, stripe-blik, stripe-bancontact,
// stripe-giropay, stripe-ideal, stripe-przelewy24 and the webhook route
// POST /stripe/hooks), only when the harness runs the fake Stripe API
// (FAKE_STRIPE_URL, see integration-tests/fixtures/fake-stripe): its stripe-node
// is pointed there first, so no backend of the tests ever calls api.stripe.com.
// Manual capture, as a shop that captures when it ships; the webhook's events are
// handled 200 ms after they arrive instead of the package's default 5 s.
if (process.env.FAKE_STRIPE_URL) {
  if (!process.env.FAKE_STRIPE_API_KEY || !process.env.FAKE_STRIPE_WEBHOOK_SECRET) {
    throw new Error("FAKE_STRIPE_URL needs FAKE_STRIPE_API_KEY and FAKE_STRIPE_WEBHOOK_SECRET (scripts/lib/fake-stripe.js stripeHostEnv)")
  }
  require("../fixtures/fake-stripe/point-stripe-node").pointStripeNodeAt(process.env.FAKE_STRIPE_URL)
  plugins.push({
    resolve: "medusa-payment-stripe",
    options: {
      api_key: process.env.FAKE_STRIPE_API_KEY,
      webhook_secret: process.env.FAKE_STRIPE_WEBHOOK_SECRET,
      capture: false,
      webhook_delay: 200,
    },
  })
}
// Routes that run the plugin's reconciler steps on demand, for `npm run bench -- --scale`.
if (process.env.BENCH_HOOKS === "1") {
  plugins.push({ resolve: path.resolve(__dirname, "../fixtures/bench-hooks"), options: {} })
}
if (process.env.HOST_WITHOUT_PLUGIN !== "1") {
  // Without dist/ Medusa would fall back to the repo root, find nothing to load
  // and boot plain core without a word.
  if (!fs.existsSync(path.join(REPO_ROOT, "dist"))) {
    throw new Error(`${REPO_ROOT}/dist is missing: run \`npm run build\` (or set HOST_WITHOUT_PLUGIN=1)`)
  }
  plugins.push({
    resolve: REPO_ROOT, // the loader uses <repo>/dist when it exists
    options: JSON.parse(process.env.PAYMENT_COLLECTIONS_OPTIONS || "{}"),
  })
}

module.exports = {
  projectConfig: {
    database_url: DATABASE_URL,
    database_type: "postgres",
    store_cors: CORS,
    admin_cors: CORS,
    auth_cors: CORS,
    jwt_secret: "pcp-test-jwt-secret",
    cookie_secret: "pcp-test-cookie-secret",
    ...(REDIS_URL ? { redis_url: REDIS_URL } : {}),
  },
  modules: {
    eventBus: REDIS_URL
      ? {
          resolve: "@medusajs/event-bus-redis",
          // One queue per database so backends on other databases sharing this
          // Redis never consume each other's events.
          options: { redisUrl: REDIS_URL, queueName: `pcp-events-${databaseName(DATABASE_URL)}` },
        }
      : { resolve: "@medusajs/event-bus-local" },
    cacheService: { resolve: "@medusajs/cache-inmemory" },
  },
  plugins,
}
