"use strict"

const net = require("net")

// Asks the OS for an unused loopback port. Another process could take it before
// the caller binds it; callers that can retry do so.
function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.unref()
    server.on("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

module.exports = { freePort }
