"use strict"

const TIMEOUT_MS = 30_000

/** fetch() with a JSON body; answers { status, headers, body, text } and never throws on non-2xx. */
async function httpJson(method, url, { body, headers = {} } = {}) {
  const res = await fetch(url, {
    method,
    headers: body === undefined ? headers : { "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(TIMEOUT_MS),
  })
  const text = await res.text()
  let parsed = text
  try {
    parsed = text ? JSON.parse(text) : null
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, headers: res.headers, body: parsed, text }
}

/** Like httpJson, but a non-2xx answer is an error naming `what`. */
async function expectOk(what, method, url, options) {
  const res = await httpJson(method, url, options)
  if (res.status < 200 || res.status >= 300) {
    throw new Error(`${what}: ${method} ${url} answered ${res.status}: ${res.text.slice(0, 500)}`)
  }
  return res
}

module.exports = { httpJson, expectOk }
