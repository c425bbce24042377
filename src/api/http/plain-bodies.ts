import {
  MAX_AMOUNT,
  MAX_BATCH_SESSIONS,
  MAX_ID_LENGTH,
  StorePaymentCollectionSessionsReq,
  StorePostPaymentCollectionsBatchSessionsAuthorizeReq,
  StorePostPaymentCollectionsBatchSessionsReq,
  StorePostPaymentCollectionsSessionsReq,
} from "../store/payment-collections/validators"

/**
 * A cheap check before class-validator, for the bodies storefronts send:
 * when a body is plainly valid — only the DTO's keys, every value of the
 * right type and well inside its limits — its DTO is built directly. Anything
 * else (a wrong type, a value near a limit, an unknown key, a null) answers
 * `undefined` and goes to class-validator, which decides, so the answers to
 * bad input stay exactly class-validator's.
 */

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return !!value && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype
}

function hasOnlyKeys(value: Record<string, unknown>, allowed: readonly string[]): boolean {
  for (const key in value) {
    if (!allowed.includes(key)) return false
  }
  return true
}

/** A non-empty id whose UTF-16 length (never less than class-validator's count) is within the limit. */
function isPlainId(value: unknown): value is string {
  return typeof value === "string" && value.length >= 1 && value.length <= MAX_ID_LENGTH
}

function isPlainAmount(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= 1 && value <= MAX_AMOUNT
}

const CREATE_KEYS = ["provider_id"] as const
const BATCH_KEYS = ["sessions"] as const
const SESSION_KEYS = ["provider_id", "amount", "session_id"] as const
const AUTHORIZE_KEYS = ["session_ids"] as const

export function plainCreateBody(body: unknown): StorePaymentCollectionSessionsReq | undefined {
  if (!isPlainObject(body) || !hasOnlyKeys(body, CREATE_KEYS) || !isPlainId(body.provider_id)) {
    return undefined
  }
  return Object.assign(new StorePaymentCollectionSessionsReq(), { provider_id: body.provider_id })
}

export function plainBatchBody(body: unknown): StorePostPaymentCollectionsBatchSessionsReq | undefined {
  if (!isPlainObject(body) || !hasOnlyKeys(body, BATCH_KEYS)) {
    return undefined
  }
  const { sessions } = body
  if (!Array.isArray(sessions) || sessions.length < 1 || sessions.length > MAX_BATCH_SESSIONS) {
    return undefined
  }
  const dtos: StorePostPaymentCollectionsSessionsReq[] = []
  for (const session of sessions) {
    if (
      !isPlainObject(session) ||
      !hasOnlyKeys(session, SESSION_KEYS) ||
      !isPlainId(session.provider_id) ||
      !isPlainAmount(session.amount) ||
      !(session.session_id === undefined || isPlainId(session.session_id))
    ) {
      return undefined
    }
    dtos.push(
      Object.assign(new StorePostPaymentCollectionsSessionsReq(), {
        provider_id: session.provider_id,
        amount: session.amount,
        ...(session.session_id === undefined ? {} : { session_id: session.session_id }),
      })
    )
  }
  return Object.assign(new StorePostPaymentCollectionsBatchSessionsReq(), { sessions: dtos })
}

export function plainAuthorizeBody(body: unknown): StorePostPaymentCollectionsBatchSessionsAuthorizeReq | undefined {
  if (!isPlainObject(body) || !hasOnlyKeys(body, AUTHORIZE_KEYS)) {
    return undefined
  }
  const ids = body.session_ids
  if (
    !Array.isArray(ids) ||
    ids.length < 1 ||
    ids.length > MAX_BATCH_SESSIONS ||
    !ids.every(isPlainId) ||
    new Set(ids).size !== ids.length
  ) {
    return undefined
  }
  return Object.assign(new StorePostPaymentCollectionsBatchSessionsAuthorizeReq(), { session_ids: [...ids] })
}
