// The demo backend of `npm start`: this repository run as a Medusa 1.20 project.
// Medusa loads a project's own dist/ (routes, services, models, migrations) the
// way it loads a plugin's, and a project's own src/admin as its dashboard
// extensions, so the plugin is served without being listed below.
// Merchants install the published package instead: see README.md.
const path = require("path")

const CORS = process.env.DEMO_CORS || "http://localhost:8000,http://localhost:7001"
const FIXTURES = path.join(__dirname, "integration-tests", "fixtures")

module.exports = {
  projectConfig: {
    database_url: process.env.DATABASE_URL,
    database_type: "postgres",
    store_cors: CORS,
    admin_cors: CORS,
    auth_cors: CORS,
    jwt_secret: process.env.JWT_SECRET || "demo-jwt-secret",
    cookie_secret: process.env.COOKIE_SECRET || "demo-cookie-secret",
    ...(process.env.REDIS_URL ? { redis_url: process.env.REDIS_URL } : {}),
  },
  // Off, or the analytics consent modal covers the dashboard after each login.
  featureFlags: { analytics: false },
  modules: {
    eventBus: process.env.REDIS_URL
      ? { resolve: "@medusajs/event-bus-redis", options: { redisUrl: process.env.REDIS_URL } }
      : { resolve: "@medusajs/event-bus-local" },
    cacheService: { resolve: "@medusajs/cache-inmemory" },
  },
  plugins: [
    "medusa-payment-manual",
    // The tests' payment providers ("test-pay" and friends, backed by the fake
    // PSP that scripts/start.js starts) and flat-rate fulfillment provider
    // ("test-ship"), so the demo order can be shipped and its edit paid through
    // two providers.
    { resolve: path.join(FIXTURES, "test-payment-providers"), options: {} },
    { resolve: path.join(FIXTURES, "test-fulfillment-provider"), options: {} },
    // The dashboard at /app; scripts/start.js runs `medusa-admin build` when src/admin changed.
    {
      resolve: "@medusajs/admin",
      options: { serve: true, autoRebuild: false, path: "/app", outDir: ".medusa-demo/admin" },
    },
  ],
}
