import fs from "fs"
import path from "path"
import Ajv, { ErrorObject, ValidateFunction } from "ajv"
import addFormats from "ajv-formats"

/**
 * The plugin's OpenAPI 3.0 document (openapi.json at the package root) as a
 * checker of answers: find the operation of a method and path, then tell what
 * in a status, headers and body the document does not allow. Pure: no I/O
 * beyond reading the document, so it can be tested with made-up answers.
 */

export const OPENAPI_FILE = path.resolve(__dirname, "../../openapi.json")

/** Headers only the plugin sends: present where the document does not list them is a drift. */
const PLUGIN_HEADERS = ["x-payment-collections-plugin", "idempotent-replayed"]

const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"]

/** ajv's id for the document's `components.schemas`, referenced as `<id>#/definitions/<name>`. */
const SCHEMAS_ID = "openapi-components"

export interface ContractAnswer {
  status: number
  /** Lower-case header names */
  headers: Record<string, string>
  /** Parsed JSON when the answer is JSON, else the text */
  body: unknown
  text: string
}

export interface Operation {
  method: string
  /** The document's path template, e.g. /store/payment-collections/{id}/sessions */
  template: string
  operationId: string
  responses: Record<string, unknown>
}

type Json = any

interface PathTemplate {
  template: string
  segments: string[]
  literals: number
}

function templateOf(template: string): PathTemplate {
  const segments = template.split("/").slice(1)
  return { template, segments, literals: segments.filter((s) => !s.startsWith("{")).length }
}

/** The request path without query or fragment, and without the trailing slash express ignores. */
function requestPathOf(url: string): string {
  const withoutQuery = url.replace(/[?#].*$/, "")
  const pathname = /^[a-z]+:\/\//i.test(withoutQuery) ? new URL(withoutQuery).pathname : withoutQuery
  return pathname.length > 1 ? pathname.replace(/\/$/, "") : pathname
}

/** express routes case-insensitively; a `{param}` takes any one non-empty segment. */
function matches(t: PathTemplate, segments: string[]): boolean {
  return (
    t.segments.length === segments.length &&
    t.segments.every((s, i) =>
      s.startsWith("{") ? segments[i].length > 0 : s.toLowerCase() === segments[i].toLowerCase()
    )
  )
}

/** `#/components/schemas/X` → a reference ajv resolves in the schemas it was given. */
function rewriteRefs(value: Json): Json {
  if (Array.isArray(value)) return value.map(rewriteRefs)
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [
        k,
        k === "$ref" && typeof v === "string"
          ? v.replace(/^#\/components\/schemas\//, `${SCHEMAS_ID}#/definitions/`)
          : rewriteRefs(v),
      ])
    )
  }
  return value
}

function describeErrors(errors: ErrorObject[] | null | undefined): string {
  return (errors ?? [])
    .slice(0, 8)
    .map((e) => {
      const extra =
        e.keyword === "additionalProperties"
          ? ` (${(e.params as { additionalProperty: string }).additionalProperty})`
          : e.keyword === "enum"
            ? ` (${JSON.stringify((e.params as { allowedValues: unknown[] }).allowedValues)})`
            : ""
      return `${e.instancePath || "(body)"} ${e.message}${extra}`
    })
    .join("; ")
}

export class OpenApiContract {
  readonly document: Json
  private readonly ajv: Ajv
  private readonly templates: PathTemplate[]
  private readonly compiled = new Map<string, ValidateFunction>()

  constructor(document: Json) {
    this.document = document
    // OpenAPI 3.0 schema objects are JSON Schema plus `nullable` (which ajv
    // knows) and `example` (an annotation).
    this.ajv = new Ajv({ allErrors: true, strict: true, keywords: ["example"] })
    addFormats(this.ajv)
    this.ajv.addSchema(
      { $id: SCHEMAS_ID, definitions: rewriteRefs(document.components?.schemas ?? {}) },
      SCHEMAS_ID
    )
    this.templates = Object.keys(document.paths ?? {})
      .map(templateOf)
      // Literal segments win over parameters, as in the backend's router:
      // /sessions/batch is the batch route, not a refresh of session "batch".
      .sort((a, b) => b.literals - a.literals)
  }

  static load(file = OPENAPI_FILE): OpenApiContract {
    return new OpenApiContract(JSON.parse(fs.readFileSync(file, "utf8")))
  }

  /** Every documented operation. */
  operations(): Operation[] {
    return Object.entries(this.document.paths as Record<string, Json>).flatMap(([template, item]) =>
      METHODS.filter((m) => item[m]).map((m) => ({
        method: m.toUpperCase(),
        template,
        operationId: item[m].operationId,
        responses: item[m].responses,
      }))
    )
  }

  /** The documented operation a request reaches, or undefined when the path is not the plugin's. */
  findOperation(method: string, url: string): Operation | undefined {
    const segments = requestPathOf(url).split("/").slice(1)
    const template = this.templates.find((t) => matches(t, segments))
    if (!template) return undefined
    const operation = this.document.paths[template.template][method.toLowerCase()]
    if (!operation) return undefined
    return {
      method: method.toUpperCase(),
      template: template.template,
      operationId: operation.operationId,
      responses: operation.responses,
    }
  }

  /** Whether a path belongs to the document at all (any method). */
  documentsPath(url: string): boolean {
    const segments = requestPathOf(url).split("/").slice(1)
    return this.templates.some((t) => matches(t, segments))
  }

  /** Resolves a `#/components/...` reference (responses, headers, parameters). */
  resolve(value: Json): Json {
    let current = value
    while (current && typeof current.$ref === "string") {
      const pointer: string = current.$ref
      if (!pointer.startsWith("#/")) throw new Error(`openapi.json: unsupported reference ${pointer}`)
      current = pointer
        .slice(2)
        .split("/")
        .map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"))
        .reduce((node: Json, key) => node?.[key], this.document)
      if (current === undefined) throw new Error(`openapi.json: ${pointer} does not resolve`)
    }
    return current
  }

  /** ajv's validator for a schema object of the document, compiled once. */
  validator(schema: Json, cacheKey: string): ValidateFunction {
    let validate = this.compiled.get(cacheKey)
    if (!validate) {
      validate = this.ajv.compile(rewriteRefs(schema))
      this.compiled.set(cacheKey, validate)
    }
    return validate
  }

  /** Validates `value` against components.schemas[name]. */
  schemaViolations(name: string, value: unknown): string[] {
    if (!this.document.components?.schemas?.[name]) throw new Error(`openapi.json has no schema ${name}`)
    const validate = this.validator({ $ref: `#/components/schemas/${name}` }, `schema:${name}`)
    return validate(value) ? [] : [`${name}: ${describeErrors(validate.errors)}`]
  }

  /**
   * What in an answer the document does not allow: [] when all is as
   * documented, or when the request is not one of the document's operations
   * (except an answer carrying the plugin's header: an undocumented route).
   */
  violations(method: string, url: string, answer: ContractAnswer): string[] {
    const operation = this.findOperation(method, url)
    if (!operation) {
      return answer.headers["x-payment-collections-plugin"] !== undefined
        ? [`${method.toUpperCase()} ${requestPathOf(url)} is answered by the plugin but is not in openapi.json`]
        : []
    }
    const where = `${operation.method} ${operation.template} → ${answer.status}`
    const documented = Object.keys(operation.responses)
    const declared = operation.responses[String(answer.status)] ?? operation.responses.default
    if (!declared) {
      return [`${where}: status ${answer.status} is not documented (documented: ${documented.join(", ")})`]
    }
    const response = this.resolve(declared)
    return [
      ...this.headerViolations(where, response, answer),
      ...this.bodyViolations(where, `${operation.method} ${operation.template} ${answer.status}`, response, answer),
    ]
  }

  private headerViolations(where: string, response: Json, answer: ContractAnswer): string[] {
    const problems: string[] = []
    const declared: Record<string, Json> = Object.fromEntries(
      Object.entries(response.headers ?? {}).map(([name, h]) => [name.toLowerCase(), this.resolve(h)])
    )
    for (const [name, header] of Object.entries(declared)) {
      const value = answer.headers[name]
      if (value === undefined) {
        if (header.required) problems.push(`${where}: header ${name} is missing`)
        continue
      }
      const validate = this.validator(header.schema ?? {}, `header:${where}:${name}`)
      if (!validate(value)) problems.push(`${where}: header ${name}: ${JSON.stringify(value)} ${describeErrors(validate.errors)}`)
    }
    for (const name of PLUGIN_HEADERS) {
      if (answer.headers[name] !== undefined && !declared[name]) {
        problems.push(`${where}: header ${name} is sent but not documented for this answer`)
      }
    }
    return problems
  }

  private bodyViolations(where: string, cacheKey: string, response: Json, answer: ContractAnswer): string[] {
    const content: Record<string, Json> = response.content ?? {}
    const mediaTypes = Object.keys(content)
    if (mediaTypes.length === 0) {
      return answer.text === "" ? [] : [`${where}: a body is sent, none is documented`]
    }
    const contentType = (answer.headers["content-type"] ?? "").split(";")[0].trim().toLowerCase()
    // An answer without Content-Type (passport's 401) is taken as text.
    const mediaType = contentType === "" ? "text/plain" : contentType
    const media = content[mediaType]
    if (!media) {
      return [`${where}: Content-Type ${contentType || "(none)"} is not documented (documented: ${mediaTypes.join(", ")})`]
    }
    const isJson = /^application\/([a-z.+-]*\+)?json$/.test(mediaType)
    let value: unknown = answer.text
    if (isJson) {
      try {
        value = JSON.parse(answer.text)
      } catch {
        return [`${where}: the body is not valid JSON: ${answer.text.slice(0, 200)}`]
      }
    }
    const validate = this.validator(media.schema ?? {}, `body:${cacheKey}:${mediaType}`)
    if (validate(value)) return []
    return [`${where}: the body does not match openapi.json: ${describeErrors(validate.errors)}`]
  }
}

let shared: OpenApiContract | undefined

/** The document, loaded once per test file. */
export function openApiContract(): OpenApiContract {
  return (shared ??= OpenApiContract.load())
}
