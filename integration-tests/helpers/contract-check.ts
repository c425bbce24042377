import fs from "fs"
import { ContractAnswer, openApiContract } from "./openapi-contract"

/**
 * Every answer the suite receives from the plugin's routes is checked against
 * openapi.json (helpers/http.ts and the medusa-js spec call this). Answers of
 * core-only backends (HOST_WITHOUT_PLUGIN=1, the compatibility spec's core)
 * and of routes that are not the plugin's are not checked.
 */

const SERVED_BY_HEADER = "x-payment-collections-plugin"
/** No collection has this id: the plugin answers 404 with its header, core without. */
const PROBE_PATH = "/store/payment-collections/pcp_openapi_probe"

const pluginBackends = new Map<string, Promise<boolean>>()

export class ContractViolation extends Error {
  constructor(problems: string[], answer: ContractAnswer) {
    super(
      `The plugin's answer does not match openapi.json:\n  - ${problems.join("\n  - ")}\n` +
        `  answer: ${answer.status} ${answer.text.slice(0, 1500)}`
    )
    this.name = "ContractViolation"
  }
}

/**
 * Whether the backend at `baseUrl` runs the plugin. An answer with the
 * plugin's header says so; otherwise (a core backend, or Medusa's 401 sent
 * before the plugin's middleware) the backend is asked once.
 */
async function isPluginBackend(baseUrl: string, answer: ContractAnswer): Promise<boolean> {
  if (answer.headers[SERVED_BY_HEADER] !== undefined) {
    pluginBackends.set(baseUrl, Promise.resolve(true))
    return true
  }
  let known = pluginBackends.get(baseUrl)
  if (!known) {
    known = fetch(baseUrl + PROBE_PATH, { signal: AbortSignal.timeout(10_000) }).then(async (res) => {
      await res.arrayBuffer()
      return res.headers.has(SERVED_BY_HEADER)
    })
    known.catch(() => pluginBackends.delete(baseUrl))
    pluginBackends.set(baseUrl, known)
  }
  return await known
}

/** Throws a ContractViolation when the plugin answered `method path` otherwise than documented. */
export async function checkAgainstContract(
  baseUrl: string,
  method: string,
  path: string,
  answer: ContractAnswer
): Promise<void> {
  const contract = openApiContract()
  const served = answer.headers[SERVED_BY_HEADER] !== undefined
  if (!served && !contract.findOperation(method, path)) return
  if (!(await isPluginBackend(baseUrl, answer))) return
  const problems = contract.violations(method, path, answer)
  logChecked(contract.findOperation(method, path), answer.status, problems.length === 0)
  if (problems.length) throw new ContractViolation(problems, answer)
}

/**
 * With PCP_CONTRACT_LOG=<file>, one line per checked answer
 * (`METHOD template status ok|violation`), to see which documented answers
 * the suite exercises: `sort <file> | uniq -c`.
 */
function logChecked(operation: { method: string; template: string } | undefined, status: number, ok: boolean) {
  const file = process.env.PCP_CONTRACT_LOG
  if (!file) return
  const what = operation ? `${operation.method} ${operation.template}` : "(undocumented route)"
  fs.appendFileSync(file, `${what} ${status} ${ok ? "ok" : "violation"}\n`)
}

/** The parts of an axios instance the check needs (medusa-js' client). */
interface AxiosLike {
  interceptors: {
    response: {
      use(
        onFulfilled: (response: AxiosResponseLike) => Promise<AxiosResponseLike>,
        onRejected: (error: { response?: AxiosResponseLike }) => Promise<never>
      ): unknown
    }
  }
}

interface AxiosResponseLike {
  status: number
  headers: Record<string, unknown> | { toJSON(): Record<string, unknown> }
  data: unknown
  config: { method?: string; url?: string; baseURL?: string }
}

function answerOfAxios(response: AxiosResponseLike): ContractAnswer {
  const raw = "toJSON" in response.headers && typeof response.headers.toJSON === "function"
    ? response.headers.toJSON()
    : (response.headers as Record<string, unknown>)
  const headers = Object.fromEntries(
    Object.entries(raw)
      .filter(([, v]) => v !== undefined && v !== null)
      .map(([k, v]) => [k.toLowerCase(), Array.isArray(v) ? v.join(", ") : String(v)])
  )
  const text = typeof response.data === "string" ? response.data : JSON.stringify(response.data) ?? ""
  return { status: response.status, headers, body: response.data, text }
}

/**
 * Checks every answer a medusa-js client receives (its axios instance's
 * response interceptor: resolved and rejected calls alike).
 */
export function checkMedusaJsAnswers(client: unknown, baseUrl: string): void {
  const axios = (client as { axiosClient: AxiosLike }).axiosClient
  const check = async (response: AxiosResponseLike) => {
    const { method = "get", url = "" } = response.config
    await checkAgainstContract(baseUrl, method, url, answerOfAxios(response))
  }
  axios.interceptors.response.use(
    async (response) => {
      await check(response)
      return response
    },
    async (error) => {
      if (error.response) await check(error.response)
      throw error
    }
  )
}
