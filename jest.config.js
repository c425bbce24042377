// Two projects so that unit tests (src/**/__tests__) don't boot a backend: a
// project's globalSetup only runs when one of its tests is selected.
const transform = {
  "^.+\\.ts$": ["ts-jest", { tsconfig: "<rootDir>/integration-tests/tsconfig.json" }],
}
const modulePathIgnorePatterns = ["<rootDir>/dist/", "<rootDir>/.medusa-demo/", "<rootDir>/.medusa-config/", "<rootDir>/.test-data/"]

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
  ],
}
