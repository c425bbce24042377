#!/usr/bin/env node
"use strict"

// `node scripts/with-repo-env.js <command> [args...]`: runs a command in the
// repository's environment (lib/repo-env.js), which must be in place before
// the command starts: jest imports @medusajs/medusa in its own process. The
// npm scripts run jest and medusa-admin through it. Commands are looked up in
// node_modules/.bin first; the exit code (or signal) is the command's.

const path = require("path")
const { spawn } = require("child_process")
const { repoEnv } = require("./lib/repo-env")

const [command, ...args] = process.argv.slice(2)
if (!command) {
  process.stderr.write("usage: node scripts/with-repo-env.js <command> [args...]\n")
  process.exit(2)
}
const bin = path.resolve(__dirname, "..", "node_modules", ".bin")
const env = repoEnv({ PATH: [bin, process.env.PATH].filter(Boolean).join(path.delimiter) })
const child = spawn(command, args, { stdio: "inherit", env })
// Ctrl+C reaches the command from the terminal too; a signal sent to this
// process alone (npm forwarding one) must reach it as well.
const signals = ["SIGINT", "SIGTERM", "SIGHUP"]
for (const signal of signals) process.on(signal, () => child.kill(signal))
child.on("error", (err) => {
  process.stderr.write(`${command}: ${err.message}\n`)
  process.exit(127)
})
child.on("exit", (code, signal) => {
  if (signal) {
    for (const s of signals) process.removeAllListeners(s)
    process.kill(process.pid, signal)
    return
  }
  process.exit(code)
})
