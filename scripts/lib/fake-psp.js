"use strict"

const path = require("path")
const { startUrlServer } = require("./url-server")

// Starts the fake PSP (integration-tests/fixtures/fake-psp/server.js) as its own
// process and answers { url, pid, stop }. Backends reach it through
// TEST_PAY_PSP_URL=url; its state lives only in that process, so it survives
// any backend being killed, and every backend sees the same intents.

const SERVER = path.resolve(__dirname, "../../integration-tests/fixtures/fake-psp/server.js")

/**
 * Resolves once the PSP printed its URL; rejects (and kills it) when it does
 * not in time. `stateFile`: keep the intents in this file across restarts.
 */
function startFakePsp({ port = 0, stateFile } = {}) {
  return startUrlServer({
    script: SERVER,
    name: "fake PSP",
    env: { PSP_PORT: String(port), ...(stateFile ? { PSP_STATE_FILE: stateFile } : {}) },
  })
}

module.exports = { startFakePsp }
