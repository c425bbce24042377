import { checkAgainstContract } from "./contract-check"
import { testEnv } from "./env"

export interface HttpResponse<T = any> {
  status: number
  /** Lower-case header names */
  headers: Record<string, string>
  /** Parsed JSON when the response is JSON, else the text ("" for no body) */
  body: T
  text: string
}

export interface RequestOptions {
  headers?: Record<string, string>
  /** Abort after this many ms (default 30 000); an abort rejects, like a network error */
  timeoutMs?: number
}

export interface Api {
  baseUrl: string
  get<T = any>(path: string, options?: RequestOptions): Promise<HttpResponse<T>>
  post<T = any>(path: string, body?: unknown, options?: RequestOptions): Promise<HttpResponse<T>>
  delete<T = any>(path: string, options?: RequestOptions): Promise<HttpResponse<T>>
  /** Sends `rawBody` as-is (e.g. malformed JSON); content-type defaults to application/json */
  raw<T = any>(method: string, path: string, rawBody?: string, options?: RequestOptions): Promise<HttpResponse<T>>
}

async function send(
  baseUrl: string,
  defaults: Record<string, string>,
  method: string,
  path: string,
  rawBody: string | undefined,
  options: RequestOptions = {}
): Promise<HttpResponse> {
  const headers: Record<string, string> = { ...defaults, ...options.headers }
  if (rawBody !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === "content-type")) {
    headers["content-type"] = "application/json"
  }
  const request = () =>
    fetch(baseUrl + path, { method, headers, body: rawBody, signal: AbortSignal.timeout(options.timeoutMs ?? 30_000) })
  const res = await request().catch((err: Error & { cause?: { code?: string; message?: string } }) => {
    // A kept-alive socket the backend closed for idleness just as it was reused:
    // the request never reached the backend, so it is sent once more (a new socket).
    if (err.cause?.code === "UND_ERR_SOCKET" && /other side closed/.test(err.cause.message ?? "")) {
      return request()
    }
    throw err
  })
  const text = await res.text()
  let body: unknown = text
  if ((res.headers.get("content-type") || "").includes("json") && text) {
    try {
      body = JSON.parse(text)
    } catch {
      body = text
    }
  }
  const answer = { status: res.status, headers: Object.fromEntries(res.headers.entries()), body, text }
  // An answer of the plugin that openapi.json does not allow fails the request.
  await checkAgainstContract(baseUrl, method, path, answer)
  return answer
}

/**
 * A client for `baseUrl`; never throws on non-2xx answers, but rejects with a
 * ContractViolation when one of the plugin's routes answers otherwise than
 * openapi.json documents.
 */
export function createApi(baseUrl: string, defaultHeaders: Record<string, string> = {}): Api {
  return {
    baseUrl,
    get: (path, options) => send(baseUrl, defaultHeaders, "GET", path, undefined, options),
    post: (path, body, options) =>
      send(baseUrl, defaultHeaders, "POST", path, body === undefined ? undefined : JSON.stringify(body), options),
    delete: (path, options) => send(baseUrl, defaultHeaders, "DELETE", path, undefined, options),
    raw: (method, path, rawBody, options) => send(baseUrl, defaultHeaders, method, path, rawBody, options),
  }
}

export function adminHeaders(): Record<string, string> {
  return { "x-medusa-access-token": testEnv().adminToken }
}

// Made at first use, and again when the test file moved to another backend or
// admin (replaceTestEnv, helpers/own-database.ts).
function lazy(make: () => Api): Api {
  let instance: Api | undefined
  let madeFor: string | undefined
  const get = () => {
    const { backendUrl, adminToken } = testEnv()
    const key = `${backendUrl} ${adminToken}`
    if (!instance || madeFor !== key) {
      instance = make()
      madeFor = key
    }
    return instance
  }
  return {
    get baseUrl() {
      return get().baseUrl
    },
    get: (...args) => get().get(...args),
    post: (...args) => get().post(...args),
    delete: (...args) => get().delete(...args),
    raw: (...args) => get().raw(...args),
  }
}

/** The shared backend (or the one testEnv() names since replaceTestEnv), no credentials. */
export const api: Api = lazy(() => createApi(testEnv().backendUrl))
/** The shared backend as the test admin (x-medusa-access-token). */
export const adminApi: Api = lazy(() => createApi(testEnv().backendUrl, adminHeaders()))
