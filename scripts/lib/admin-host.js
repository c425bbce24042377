"use strict"

// A merchant's Medusa 1.20.11 backend with the admin dashboard and this plugin
// installed from its `npm pack` tarball (copied files, as from the registry; a
// link would give the dashboard a second React). Made from the template in
// integration-tests/admin-host in a git-ignored folder that is kept between
// runs: `npm ci` runs again only when the template's dependencies change, the
// tarball is installed every time, and `medusa-admin build` runs again only
// when what it compiles changed.
//
// The folder is .admin-host, not under .test-data: `medusa-admin build` copies
// the dashboard's sources into <host>/.cache with a filter that drops every
// file whose absolute path contains ".test" or ".spec" (admin-ui's
// copyFilter), and then fails to find main.tsx.

const crypto = require("crypto")
const fs = require("fs")
const path = require("path")
const { spawn } = require("child_process")
const { repoEnv } = require("./repo-env")

const REPO_ROOT = path.resolve(__dirname, "../..")
const TEMPLATE_DIR = path.join(REPO_ROOT, "integration-tests", "admin-host")
const TEMPLATE_FILES = ["package.json", "package-lock.json", "medusa-config.js"]
const FIXTURES = ["test-payment-providers", "test-fulfillment-provider"]
const DEFAULT_DIR = path.join(REPO_ROOT, ".admin-host")
const PATHS_ADMIN_UI_SKIPS = /\.test|\.spec|__test__|webpack\.config/
const PLUGIN_NAME = require(path.join(REPO_ROOT, "package.json")).name
const TAIL_CHARS = 6000

function sha256(...parts) {
  const hash = crypto.createHash("sha256")
  for (const part of parts) hash.update(part)
  return hash.digest("hex")
}

function fileHash(file) {
  return sha256(fs.readFileSync(file))
}

/** Runs a command; resolves with its output, rejects with the output's tail. */
function run(cmd, args, { cwd, env = {}, logFile }) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd,
      env: repoEnv(env),
      stdio: ["ignore", "pipe", "pipe"],
    })
    let output = ""
    const log = logFile ? fs.createWriteStream(logFile, { flags: "a" }) : null
    log?.write(`\n$ ${cmd} ${args.join(" ")}\n`)
    const onData = (chunk) => {
      output = (output + chunk.toString("utf8")).slice(-TAIL_CHARS)
      log?.write(chunk)
    }
    child.stdout.on("data", onData)
    child.stderr.on("data", onData)
    child.on("error", reject)
    child.on("close", (code, signal) => {
      log?.end()
      if (code === 0) return resolve(output)
      reject(new Error(`${cmd} ${args.join(" ")} (in ${cwd}) exited with ${code ?? signal}\n${output}`))
    })
  })
}

async function timed(timings, name, fn) {
  const started = Date.now()
  const result = await fn()
  timings[name] = Date.now() - started
  return result
}

function readStamp(dir, name) {
  try {
    return fs.readFileSync(path.join(dir, `.stamp-${name}`), "utf8")
  } catch {
    return null
  }
}

function writeStamp(dir, name, value) {
  fs.writeFileSync(path.join(dir, `.stamp-${name}`), value)
}

/** Packs the built plugin as published (no rebuild: dist/ must be current). */
async function packPlugin(outDir, logFile) {
  for (const file of ["dist/index.js", "dist/admin/_virtual_entry.js"]) {
    if (!fs.existsSync(path.join(REPO_ROOT, file))) {
      throw new Error(`${file} is missing: run \`npm run build\` first`)
    }
  }
  fs.rmSync(outDir, { recursive: true, force: true })
  fs.mkdirSync(outDir, { recursive: true })
  const out = await run("npm", ["pack", "--ignore-scripts", "--silent", "--pack-destination", outDir], {
    cwd: REPO_ROOT,
    logFile,
  })
  const name = out.trim().split("\n").pop()
  return path.join(outDir, name)
}

/**
 * Makes (or brings up to date) the host in `dir` and returns
 * `{ dir, cli, timings }`: `cli` is the host's `medusa` binary, `timings` the
 * milliseconds each step took (a step skipped as current is left out).
 */
async function prepareAdminHost({ dir = DEFAULT_DIR, log = () => {} } = {}) {
  const timings = {}
  if (PATHS_ADMIN_UI_SKIPS.test(path.resolve(dir))) {
    throw new Error(`medusa-admin build cannot work in ${dir}: it skips files whose path contains .test, .spec or __test__`)
  }
  fs.mkdirSync(dir, { recursive: true })
  const logFile = path.join(dir, "setup.log")
  fs.writeFileSync(logFile, `admin host setup ${new Date().toISOString()}\n`)

  for (const file of TEMPLATE_FILES) {
    fs.copyFileSync(path.join(TEMPLATE_DIR, file), path.join(dir, file))
  }
  for (const fixture of FIXTURES) {
    const target = path.join(dir, "fixtures", fixture)
    fs.rmSync(target, { recursive: true, force: true })
    fs.cpSync(path.join(REPO_ROOT, "integration-tests", "fixtures", fixture), target, { recursive: true })
  }

  const depsStamp = sha256(...["package.json", "package-lock.json"].map((f) => fs.readFileSync(path.join(dir, f))))
  const cli = path.join(dir, "node_modules", ".bin", "medusa")
  if (!fs.existsSync(cli) || readStamp(dir, "deps") !== depsStamp) {
    log("installing the host's dependencies (npm ci)")
    await timed(timings, "npm_ci", () =>
      run("npm", ["ci", "--no-audit", "--no-fund", "--loglevel=error"], { cwd: dir, logFile })
    )
    writeStamp(dir, "deps", depsStamp)
  }

  const tarball = await timed(timings, "pack", () => packPlugin(path.join(dir, ".pack"), logFile))
  await timed(timings, "install_plugin", () =>
    run("npm", ["install", "--no-save", "--no-audit", "--no-fund", "--loglevel=error", tarball], {
      cwd: dir,
      logFile,
    })
  )
  const installed = path.join(dir, "node_modules", PLUGIN_NAME)
  const bundle = path.join(installed, "dist", "admin", "_virtual_entry.js")
  if (fs.lstatSync(installed).isSymbolicLink() || !fs.existsSync(bundle)) {
    throw new Error(`${installed} is not an installed copy of the tarball with dist/admin/_virtual_entry.js`)
  }

  const buildStamp = sha256(depsStamp, fileHash(bundle), fs.readFileSync(path.join(dir, "medusa-config.js")))
  if (!fs.existsSync(path.join(dir, "build", "index.html")) || readStamp(dir, "build") !== buildStamp) {
    log("building the admin dashboard (medusa-admin build)")
    fs.rmSync(path.join(dir, ".stamp-build"), { force: true })
    const output = await timed(timings, "admin_build", () =>
      run(path.join(dir, "node_modules", ".bin", "medusa-admin"), ["build"], { cwd: dir, logFile })
    )
    // It logs webpack's errors and still exits 0.
    if (!fs.existsSync(path.join(dir, "build", "index.html"))) {
      throw new Error(`medusa-admin build wrote no build/index.html\n${output}`)
    }
    writeStamp(dir, "build", buildStamp)
  }
  return { dir, cli, timings, logFile }
}

module.exports = { prepareAdminHost, DEFAULT_DIR }
