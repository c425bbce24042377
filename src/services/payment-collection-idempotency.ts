import { TransactionBaseService } from "@medusajs/medusa"
import { createHash, randomBytes } from "crypto"
import { MedusaError } from "medusa-core-utils"
import { canonicalJson } from "../lib/canonical-json"
import { updatedRows } from "../db/collection-writes"
import { EntityManager } from "typeorm"
import {
  PluginOptions,
  ResolvedPluginOptions,
  longestRequestMs,
  resolveOptions,
} from "../types/options"

/** Keys are stored with this prefix so they never meet core's cart keys. */
const KEY_PREFIX = "pcp:"
export const MAX_IDEMPOTENCY_KEY_LENGTH = 255

export type StoredResponse = { status: number; body: unknown }

export type IdempotentRequest = {
  key: string
  method: string
  path: string
  /** The payment collection the request is about: a key belongs to the first one it was used on. */
  collectionId?: string
  body: unknown
}

export type Claim =
  | { kind: "owner"; id: string }
  | { kind: "replay"; response: StoredResponse }

type InjectedDependencies = { manager: EntityManager }

/**
 * Idempotency-Key with Stripe's semantics, kept in core's `idempotency_key`
 * table. Core's IdempotencyKeyService stores no request fingerprint, never
 * expires keys and claims a key in two statements (a race between parallel
 * first requests); this service claims with one INSERT ... ON CONFLICT and
 * compares method, path and a hash of the body.
 */
export default class PaymentCollectionIdempotencyService extends TransactionBaseService {
  static LIFE_TIME = "SINGLETON"
  protected readonly options_: ResolvedPluginOptions

  constructor(container: InjectedDependencies, options?: PluginOptions) {
    super(container, options as Record<string, unknown>)
    this.options_ = resolveOptions(options)
  }

  /**
   * Makes this request the owner of its key, or tells what to answer instead:
   * the stored response (same request again), 422 (another request under the
   * same key) or 409 (the first request is still running).
   */
  async claim(request: IdempotentRequest): Promise<Claim> {
    const key = KEY_PREFIX + request.key
    const params = { body_sha256: fingerprint(request.body), collection_id: request.collectionId ?? null }
    const ttl = this.options_.idempotency_key_ttl_seconds
    // A key whose owner died mid-request is taken over once no request could still be running.
    const staleSeconds = Math.ceil(longestRequestMs(this.options_) / 1000)

    const claimed: { id: string }[] = await this.manager_.query(
      `INSERT INTO idempotency_key
              (id, idempotency_key, request_method, request_path, request_params, locked_at, recovery_point)
       VALUES ($1, $2, $3, $4, $5, now(), 'started')
       ON CONFLICT (idempotency_key) DO UPDATE
          SET id = EXCLUDED.id, created_at = now(), locked_at = now(),
              request_method = EXCLUDED.request_method,
              request_path = EXCLUDED.request_path,
              request_params = EXCLUDED.request_params,
              response_code = NULL, response_body = NULL, recovery_point = 'started'
        WHERE (idempotency_key.response_code IS NOT NULL
               AND idempotency_key.created_at < now() - make_interval(secs => $6))
           OR (idempotency_key.response_code IS NULL
               AND idempotency_key.locked_at < now() - make_interval(secs => $7))
       RETURNING id`,
      [
        "ikey_" + randomBytes(12).toString("hex"),
        key,
        request.method,
        request.path,
        JSON.stringify(params),
        ttl,
        staleSeconds,
      ]
    )
    if (claimed.length) {
      return { kind: "owner", id: claimed[0].id }
    }

    const [existing]: {
      request_method: string
      request_path: string
      request_params: { body_sha256?: string; collection_id?: string | null } | null
      response_code: number | null
      response_body: unknown
    }[] = await this.manager_.query(
      `SELECT request_method, request_path, request_params, response_code, response_body
         FROM idempotency_key WHERE idempotency_key = $1`,
      [key]
    )
    if (!existing) {
      // Deleted between our two statements (its owner failed): try again.
      return await this.claim(request)
    }
    const firstCollection = existing.request_params?.collection_id
    if (firstCollection && request.collectionId && firstCollection !== request.collectionId) {
      throw new MedusaError(
        MedusaError.Types.DUPLICATE_ERROR,
        `This Idempotency-Key was first used on payment collection ${firstCollection}; use a new key for another collection`
      )
    }
    if (
      existing.request_method !== request.method ||
      existing.request_path !== request.path ||
      existing.request_params?.body_sha256 !== params.body_sha256
    ) {
      throw new MedusaError(
        MedusaError.Types.DUPLICATE_ERROR,
        "This Idempotency-Key was already used with a different request"
      )
    }
    if (existing.response_code === null) {
      throw new MedusaError(
        MedusaError.Types.CONFLICT,
        "A request with this Idempotency-Key is still being processed"
      )
    }
    return {
      kind: "replay",
      response: { status: existing.response_code, body: existing.response_body },
    }
  }

  /** Stores the answer to replay; called before the answer is sent. */
  async complete(id: string, response: StoredResponse): Promise<void> {
    await this.settleIn(this.manager_, id, response)
  }

  /** Forgets a key whose request ended in a way a retry should re-run. */
  async release(id: string): Promise<void> {
    await this.settleIn(this.manager_, id, undefined)
  }

  /**
   * The key's answer, written with `manager` — inside a request's transaction,
   * so the answer commits with what it answers (Stripe's recovery point): a
   * retry after a crash past the commit replays it. `undefined`: a retry should
   * run the request again (a 409 or 5xx), so the key is forgotten.
   */
  async settleIn(manager: EntityManager, id: string, response: StoredResponse | undefined): Promise<void> {
    if (!response) {
      await manager.query(`DELETE FROM idempotency_key WHERE id = $1`, [id])
      return
    }
    await manager.query(
      `UPDATE idempotency_key
          SET response_code = $2, response_body = $3, locked_at = NULL, recovery_point = 'finished'
        WHERE id = $1`,
      [id, response.status, JSON.stringify(response.body ?? null)]
    )
  }

  /**
   * Retention (run by the reconciler's timer): the plugin's keys older than
   * `idempotency_key_ttl_seconds` that are answered or whose request is long
   * gone. Answers how many went.
   */
  async deleteExpired(): Promise<number> {
    // DELETE ... RETURNING answers [rows, count] through TypeORM's postgres driver.
    // The prefix is written out, not a parameter, so that the partial index on
    // the plugin's keys (migration CreatePaymentCollectionReconcilerIndexes)
    // applies to any plan, a generic one included.
    const deleted = await this.manager_.query(
      `DELETE FROM idempotency_key
        WHERE idempotency_key LIKE '${KEY_PREFIX}%'
          AND created_at < now() - make_interval(secs => $1)
          AND (response_code IS NOT NULL OR locked_at IS NULL OR locked_at < now() - make_interval(secs => $1))
        RETURNING id`,
      [this.options_.idempotency_key_ttl_seconds]
    )
    return updatedRows(deleted).length
  }
}

/** SHA-256 of the body with object keys sorted, so key order doesn't matter. */
export function fingerprint(body: unknown): string {
  return createHash("sha256").update(canonicalJson(body)).digest("hex")
}
