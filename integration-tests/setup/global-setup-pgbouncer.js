"use strict"

// The "pgbouncer" jest project (jest.config.js): its own PostgreSQL, with
// PgBouncer in transaction mode in front of it for every backend.
const { setUpHarness } = require("./global-setup")

module.exports = async function globalSetup() {
  await setUpHarness({ name: "pgbouncer", envFileVar: "PCP_TEST_ENV_FILE_PGBOUNCER", viaPgbouncer: true })
}
