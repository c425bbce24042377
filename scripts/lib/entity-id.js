"use strict"

const crypto = require("crypto")

// Medusa ids are `<prefix>_<ULID>`: this makes the same shape (time-ordered, 26 chars).
const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

function entityId(prefix) {
  let time = Date.now()
  let timePart = ""
  for (let i = 0; i < 10; i++) {
    timePart = CROCKFORD[time % 32] + timePart
    time = Math.floor(time / 32)
  }
  const randomPart = Array.from(crypto.randomBytes(16), (b) => CROCKFORD[b % 32]).join("")
  return `${prefix}_${timePart}${randomPart}`
}

module.exports = { entityId }
