import path from "path"

// Plain CommonJS shared with the scripts; typed here instead of allowJs.
// eslint-disable-next-line @typescript-eslint/no-var-requires
const net: { freePort(): Promise<number> } = require(path.resolve(__dirname, "../../scripts/lib/net.js"))

/** An unused loopback port (another process could take it before it is bound). */
export const freePort = net.freePort
