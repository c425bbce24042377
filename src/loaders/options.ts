import { Logger, MedusaContainer } from "@medusajs/medusa"
import { PLUGIN_NAME } from "../lib/plugin-info"
import { optionProblems, pluginOptionsOf, resolveOptions } from "../types/options"

/**
 * Checks the plugin's options once, at boot: a backend with an option the
 * plugin does not know, or a value it does not accept, does not start; one
 * with valid options logs the options in effect.
 *
 * Why it exits instead of throwing: Medusa 1.20 catches what a plugin loader
 * throws, logs it as a warning ("Running loader failed", loaders/plugins.js
 * runLoaders) and serves anyway — here with defaults nobody asked for, e.g. a
 * misspelled `lock_timeout_ms` silently left at 15 s. Medusa itself stops the
 * same way on a medusa-config.js it cannot load (loaders/config.js
 * handleConfigError: logger.error, then process.exit(1)). Setup functions,
 * whose errors do stop the boot, are not given the options.
 *
 * `options` is the plugin's `plugins` entry's options, or, when this package
 * is the Medusa project itself, the whole config module: the plugin's options
 * are found in it (pluginOptionsOf), not taken for it.
 */
export default async function optionsLoader(container: MedusaContainer, options?: unknown): Promise<void> {
  const logger = container.resolve<Logger>("logger")
  const problems = optionProblems(pluginOptionsOf(options))
  if (problems.length > 0) {
    logger.error(
      `${PLUGIN_NAME}: invalid plugin options in medusa-config.js, the backend does not start: ${problems.join("; ")}`
    )
    // The logger writes through a stream: give it a turn before the process ends.
    await new Promise((resolve) => setImmediate(resolve))
    process.exit(1)
  }
  logger.info(`${PLUGIN_NAME}: options in effect ${JSON.stringify(resolveOptions(options))}`)
}
