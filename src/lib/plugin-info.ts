import { readFileSync } from "fs"
import { join } from "path"

// dist/lib/plugin-info.js → the package root's package.json.
const pkg = JSON.parse(
  readFileSync(join(__dirname, "..", "..", "package.json"), "utf8")
) as { name: string; version: string }

export const PLUGIN_NAME = pkg.name
export const PLUGIN_VERSION = pkg.version

/** Response header that shows a request was served by this plugin. */
export const SERVED_BY_HEADER = "x-payment-collections-plugin"
export const SERVED_BY_VALUE = `${PLUGIN_NAME}@${PLUGIN_VERSION}`
