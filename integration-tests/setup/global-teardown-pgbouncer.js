"use strict"

const { tearDownHarness } = require("./global-teardown")

module.exports = async function globalTeardown() {
  await tearDownHarness("pgbouncer")
}
