"use strict"

const path = require("path")
const { startUrlServer } = require("./url-server")

// Starts the fake Stripe API (integration-tests/fixtures/fake-stripe/server.js)
// as its own process and answers { url, pid, stop }. A backend registers
// medusa-payment-stripe against it when its environment holds
// stripeHostEnv(url) (see integration-tests/host/medusa-config.js). Its state
// lives only in that process, so it survives any backend being killed and every
// backend sees the same intents, as with one Stripe account.

const SERVER = path.resolve(__dirname, "../../integration-tests/fixtures/fake-stripe/server.js")

// The test account's keys: test values, meaningful only to the fake.
const STRIPE_TEST_API_KEY = "sk_test_pcp_fake_stripe_account"
const STRIPE_TEST_WEBHOOK_SECRET = "whsec_pcp_fake_stripe_endpoint_secret"

/** The environment that makes a host backend register medusa-payment-stripe against the fake at `url`. */
function stripeHostEnv(url) {
  return {
    FAKE_STRIPE_URL: url,
    FAKE_STRIPE_API_KEY: STRIPE_TEST_API_KEY,
    FAKE_STRIPE_WEBHOOK_SECRET: STRIPE_TEST_WEBHOOK_SECRET,
  }
}

/** Resolves once the fake printed its URL; rejects (and kills it) when it does not in time. */
function startFakeStripe({ port = 0 } = {}) {
  return startUrlServer({ script: SERVER, name: "fake Stripe", env: { STRIPE_PORT: String(port) } })
}

module.exports = { startFakeStripe, stripeHostEnv, STRIPE_TEST_API_KEY, STRIPE_TEST_WEBHOOK_SECRET }
