// A merchant's Medusa 1.20 backend with the admin dashboard, as the plugin's
// README tells them to set it up. The fixture providers "test-pay" and
// "test-ship" are copied next to this file (fixtures/) so that they load the
// host's own @medusajs/medusa.
const path = require("path")

const CORS = "/.*/"

module.exports = {
  projectConfig: {
    database_url: process.env.DATABASE_URL,
    database_type: "postgres",
    store_cors: CORS,
    admin_cors: CORS,
    auth_cors: CORS,
    jwt_secret: "pcp-admin-host-jwt-secret",
    cookie_secret: "pcp-admin-host-cookie-secret",
  },
  // The analytics consent modal would cover the dashboard after every login.
  featureFlags: { analytics: false },
  modules: {
    eventBus: { resolve: "@medusajs/event-bus-local" },
    cacheService: { resolve: "@medusajs/cache-inmemory" },
  },
  plugins: [
    "medusa-payment-manual",
    { resolve: path.join(__dirname, "fixtures/test-payment-providers"), options: {} },
    { resolve: path.join(__dirname, "fixtures/test-fulfillment-provider"), options: {} },
    { resolve: "medusa-plugin-payment-collections", options: { enableUI: true } },
    { resolve: "@medusajs/admin", options: { serve: true, autoRebuild: false, path: "/app" } },
  ],
}
