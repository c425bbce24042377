// Projects, so that unit tests (src/**/__tests__) don't boot a backend: a
// project's globalSetup only runs when one of its tests is selected.

// The repository's environment (scripts/lib/repo-env.js) in jest's own process
// before any test file runs, for `npx jest` too (`npm test` sets it before jest
// starts): test files import @medusajs/medusa, whose telemetry store would
// otherwise rewrite the user's <config home>/medusa/config.json. Jest reads
// this file before it forks its workers, which inherit the environment.
require("./scripts/lib/repo-env").applyRepoEnv()
const { findPgbouncer } = require("./scripts/lib/pgbouncer")

const transform = {
  "^.+\\.ts$": ["ts-jest", { tsconfig: "<rootDir>/integration-tests/tsconfig.json" }],
}
const modulePathIgnorePatterns = [
  "<rootDir>/dist/",
  "<rootDir>/.medusa-demo/",
  "<rootDir>/.medusa-config/",
  "<rootDir>/.test-data/",
  "<rootDir>/.cache/",
  "<rootDir>/.admin-host/",
]

// The specs whose correctness rests on PostgreSQL's locks and transactions run
// a second time with PgBouncer (transaction mode) between the backends and
// PostgreSQL, when the pgbouncer binary is installed. PCP_TEST_PGBOUNCER=0
// leaves that project out; =1 makes a missing binary an error (.ci/run).
const THROUGH_PGBOUNCER = ["concurrency", "idempotency-key", "lock-loss", "two-backends"]
const pgbouncerWanted = process.env.PCP_TEST_PGBOUNCER
if (pgbouncerWanted === "1" && !findPgbouncer()) {
  throw new Error("PCP_TEST_PGBOUNCER=1 but pgbouncer is not installed (Debian: apt-get install pgbouncer)")
}
const withPgbouncer = pgbouncerWanted !== "0" && findPgbouncer() !== null

/** @type {import("jest").Config} */
module.exports = {
  testTimeout: 60000,
  reporters: ["default", "<rootDir>/integration-tests/setup/summary-reporter.js"],
  projects: [
    {
      displayName: "unit",
      testEnvironment: "node",
      testMatch: ["<rootDir>/src/**/__tests__/**/*.spec.ts"],
      transform,
      modulePathIgnorePatterns,
    },
    {
      displayName: "integration",
      testEnvironment: "node",
      testMatch: ["<rootDir>/integration-tests/**/*.spec.{js,ts}"],
      // Only TypeScript is transformed; the .js harness files run as plain CommonJS.
      transform,
      modulePathIgnorePatterns,
      globalSetup: "<rootDir>/integration-tests/setup/global-setup.js",
      globalTeardown: "<rootDir>/integration-tests/setup/global-teardown.js",
    },
    ...(withPgbouncer
      ? [
          {
            displayName: "pgbouncer",
            testEnvironment: "node",
            testMatch: THROUGH_PGBOUNCER.map((name) => `<rootDir>/integration-tests/${name}.spec.ts`),
            transform,
            modulePathIgnorePatterns,
            setupFiles: ["<rootDir>/integration-tests/setup/use-pgbouncer-env.js"],
            globalSetup: "<rootDir>/integration-tests/setup/global-setup-pgbouncer.js",
            globalTeardown: "<rootDir>/integration-tests/setup/global-teardown-pgbouncer.js",
          },
        ]
      : []),
  ],
}
