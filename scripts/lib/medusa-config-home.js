"use strict"

// Medusa's CLI (medusa-telemetry, through configstore) keeps its telemetry
// switch and an outbox of unsent events in <config home>/medusa/: config.json
// and events.json*. The config home is $XDG_CONFIG_HOME, else ~/.config. While
// config.json says telemetry is enabled, every `medusa` process forks a
// detached sender that loads the whole outbox, and MEDUSA_DISABLE_TELEMETRY
// does not stop that (it only stops new events). On a developer machine whose
// outbox has grown (no network: every failed send writes the batch back), a
// few concurrent test backends each fork a sender holding the outbox in memory.
//
// So every Medusa process this repository starts gets a config home of its
// own, in which telemetry is off: the user's ~/.config/medusa is neither read
// nor written, and no sender is ever forked.

const fs = require("fs")
const path = require("path")

const REPO_ROOT = path.resolve(__dirname, "../..")
const CONFIG_HOME = path.join(REPO_ROOT, ".medusa-config")
const CONFIG_FILE = path.join(CONFIG_HOME, "medusa", "config.json")
// A machine_id already present keeps medusa-telemetry from writing one.
const CONFIG = { telemetry: { enabled: false, machine_id: "medusa-plugin-payment-collections-repository" } }

function hasTelemetryOff(file) {
  try {
    const config = JSON.parse(fs.readFileSync(file, "utf8"))
    return config?.telemetry?.enabled === false && typeof config.telemetry.machine_id === "string"
  } catch {
    return false
  }
}

/**
 * The directory to pass as XDG_CONFIG_HOME to a Medusa process, made on first
 * use. Safe to call from several processes at once (the file is replaced
 * atomically).
 */
function privateConfigHome() {
  if (hasTelemetryOff(CONFIG_FILE)) return CONFIG_HOME
  fs.mkdirSync(path.dirname(CONFIG_FILE), { recursive: true })
  const temp = `${CONFIG_FILE}.${process.pid}.tmp`
  fs.writeFileSync(temp, JSON.stringify(CONFIG, null, "\t"))
  fs.renameSync(temp, CONFIG_FILE)
  return CONFIG_HOME
}

module.exports = { privateConfigHome, CONFIG_HOME }
