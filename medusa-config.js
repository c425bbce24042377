// The demo backend of `npm start`: this repository run as a Medusa 1.20 project.
// Medusa loads a project's own dist/ (routes, services, models, migrations) the
// way it loads a plugin's, so the plugin is served without being listed below.
// Merchants install the published package instead: see README.md.
const CORS = process.env.DEMO_CORS || "http://localhost:8000,http://localhost:7001"

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
  modules: {
    eventBus: process.env.REDIS_URL
      ? { resolve: "@medusajs/event-bus-redis", options: { redisUrl: process.env.REDIS_URL } }
      : { resolve: "@medusajs/event-bus-local" },
    cacheService: { resolve: "@medusajs/cache-inmemory" },
  },
  plugins: ["medusa-payment-manual"],
}
