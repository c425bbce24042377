import { validator } from "@medusajs/medusa"
import { MedusaError } from "medusa-core-utils"

type ClassConstructor<T> = { new (...args: unknown[]): T }

/**
 * Medusa's class-validator check (whitelist, unknown properties refused),
 * after making sure the body is a JSON object at all: an array, a string from
 * a text/plain body or a missing body would otherwise reach the validator.
 */
export async function validateBody<T extends object>(
  dto: ClassConstructor<T>,
  body: unknown
): Promise<T> {
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw new MedusaError(
      MedusaError.Types.INVALID_DATA,
      "The request body must be a JSON object"
    )
  }
  return await validator(dto, body)
}

/** The same check for a query string (a repeated parameter arrives as an array and is refused). */
export async function validateQuery<T extends object>(
  dto: ClassConstructor<T>,
  query: unknown
): Promise<T> {
  return await validator(dto, (query ?? {}) as object)
}

/**
 * The body the route's middleware validated (api/middlewares.ts), or — should
 * a route ever be reached without it — the same validation here.
 */
export async function validatedBodyOf<T extends object>(
  req: { body?: unknown; validatedBody?: unknown },
  dto: ClassConstructor<T>
): Promise<T> {
  return req.validatedBody instanceof dto ? (req.validatedBody as T) : await validateBody(dto, req.body)
}
