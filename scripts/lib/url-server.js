"use strict"

const { spawn } = require("child_process")
const { repoEnv } = require("./repo-env")

// Starts a test server script (the fake PSP, the fake Stripe API) as its own
// process and resolves { url, pid, stop, stderr } once it printed its one JSON
// line {"url": ...} on stdout; rejects (and kills it) when it does not in time.
// A server still running when this process exits is killed, not left behind.

const READY_TIMEOUT_MS = 15_000
const KILL_AFTER_MS = 5_000

const running = new Set()
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL")
})

function waitForExit(child, ms) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true)
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms)
    child.once("exit", () => {
      clearTimeout(timer)
      resolve(true)
    })
  })
}

async function stopChild(child) {
  if (child.exitCode !== null || child.signalCode !== null) return
  child.kill("SIGTERM")
  if (await waitForExit(child, KILL_AFTER_MS)) return
  child.kill("SIGKILL")
  await waitForExit(child, KILL_AFTER_MS)
}

/** `name` names the server in errors; `env` is added to this process's environment. */
function startUrlServer({ script, name, env = {} }) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script], {
      env: repoEnv(env),
      stdio: ["ignore", "pipe", "pipe"],
    })
    running.add(child)
    child.on("exit", () => running.delete(child))
    let stdout = ""
    let stderr = ""
    let settled = false
    const fail = (why) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      void stopChild(child)
      reject(new Error(`${name} ${why}${stderr ? `\n${stderr}` : ""}`))
    }
    const timer = setTimeout(() => fail(`printed no URL within ${READY_TIMEOUT_MS} ms`), READY_TIMEOUT_MS)
    child.stderr.on("data", (chunk) => {
      stderr = (stderr + chunk.toString("utf8")).slice(-4000)
    })
    child.on("error", (err) => fail(`could not start: ${err.message}`))
    child.on("exit", (code, signal) => fail(`exited early (${code ?? signal})`))
    child.stdout.on("data", (chunk) => {
      if (settled) return
      stdout += chunk.toString("utf8")
      const newline = stdout.indexOf("\n")
      if (newline < 0) return
      settled = true
      clearTimeout(timer)
      let url
      try {
        url = JSON.parse(stdout.slice(0, newline)).url
      } catch {
        void stopChild(child)
        reject(new Error(`${name} printed ${JSON.stringify(stdout.slice(0, 200))} instead of {"url": ...}`))
        return
      }
      // Anything printed later is drained, so a full pipe never blocks it.
      child.stdout.resume()
      resolve({ url, pid: child.pid, stop: () => stopChild(child), stderr: () => stderr })
    })
  })
}

module.exports = { startUrlServer }
