import { MedusaError } from "medusa-core-utils"
import { EntityManager } from "typeorm"
import { PG_LOCK_NOT_AVAILABLE, conflictError, isRetryableConflict, pgCode } from "../lib/errors"
import { KeyedQueue } from "../lib/keyed-queue"
import { CollectionRead, CollectionRow, lockCollection } from "./collection-queries"
import { RowDecoder } from "./row-shapes"

/** Backoff between attempts at a row another process holds: 5, 10, 20 … 100 ms. */
const LOCK_RETRY_MIN_MS = 5
const LOCK_RETRY_MAX_MS = 100
/** Attempts at a transaction that hit a serialization failure or deadlock. */
const MAX_CONFLICT_ATTEMPTS = 3

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * How long a request waits for the collection's row, and how long its
 * transaction may sit idle while a provider answers before the server may end it.
 */
export type LockTimeouts = { lockTimeoutMs: number; idleTimeoutMs: number }

/** Work under the lock, given the collection as read after the lock was taken (sessions and region too). */
export type LockedWork<T> = (tx: EntityManager, collection: CollectionRow, read: CollectionRead) => Promise<T>

export type LockOptions = {
  /** Whether a serialization failure or deadlock may run `work` again (no provider was called). */
  mayRetry?: () => boolean
  /** The request's logged-in customer, for the read's `payer`. */
  customerId?: string
}

/** What trying the lock once came to. */
export type TryResult<T> = { locked: true; value: T } | { locked: false; reason: "busy" | "missing" }

/**
 * Serializes all work on one payment collection, across processes.
 *
 * Lock order, the same on every path: (1) this process's queue for the
 * collection, (2) the `payment_collection` row, FOR UPDATE, before anything
 * is read for a decision, (3) the collection's sessions, payments and join
 * rows. Provider calls happen while (2) is held, so two requests can never
 * both decide to initiate or authorize, and holding (2) proves that no
 * request is mid-way on this collection in any process.
 *
 * (2) is taken with NOWAIT and retried with backoff until `lockTimeoutMs`:
 * a request waiting for another process never holds a pool connection.
 *
 * One per process (held by the PaymentCollectionStoreService): `queue` is the
 * process's (1), see KeyedQueue for why it exists next to the row lock.
 */
export class CollectionLock {
  constructor(
    private readonly manager: EntityManager,
    private readonly timeouts: LockTimeouts,
    private readonly queue: KeyedQueue,
    private readonly decoder: RowDecoder
  ) {}

  get lockTimeoutMs(): number {
    return this.timeouts.lockTimeoutMs
  }

  /** (1) then (2): what a request does. `inQueue` runs more locked work in the same turn. */
  async run<T>(
    collectionId: string,
    work: (inQueue: InQueue) => Promise<T>
  ): Promise<T> {
    return await this.queue.run(
      collectionId,
      this.lockTimeoutMs,
      () => work(new InQueue(this.manager, this.decoder, collectionId, this.timeouts)),
      () => busy(collectionId)
    )
  }

  /** (1) and (2), giving up at once when a request holds either: what the reconciler does. */
  async tryNow<T>(collectionId: string, work: LockedWork<T>): Promise<TryResult<T>> {
    if (this.queue.isBusy(collectionId)) {
      return { locked: false, reason: "busy" }
    }
    return await this.run(collectionId, (inQueue) => inQueue.tryOnce(work))
  }
}

export class InQueue {
  constructor(
    private readonly manager: EntityManager,
    private readonly decoder: RowDecoder,
    private readonly collectionId: string,
    private readonly timeouts: LockTimeouts
  ) {}

  /** (2), retried with backoff until the lock timeout; then work in the locked transaction. */
  async locked<T>(work: LockedWork<T>, options: LockOptions = {}): Promise<T> {
    const deadline = Date.now() + this.timeouts.lockTimeoutMs
    let conflicts = 0
    for (let lockAttempt = 0; ; lockAttempt++) {
      try {
        return await this.transaction(work, deadline, options.customerId)
      } catch (err) {
        // Only a busy collection row is tried again; a lock wait that timed out
        // later in the work (on a session row, say) may follow provider calls.
        if (err instanceof CollectionBusy && Date.now() < deadline) {
          const backoff = Math.min(LOCK_RETRY_MAX_MS, LOCK_RETRY_MIN_MS * 2 ** Math.min(lockAttempt, 5))
          await sleep(backoff * (0.5 + Math.random()))
          continue
        }
        if (isRetryableConflict(err) && (options.mayRetry?.() ?? false) && ++conflicts < MAX_CONFLICT_ATTEMPTS) {
          continue
        }
        if (err instanceof CollectionBusy || pgCode(err) === PG_LOCK_NOT_AVAILABLE || isRetryableConflict(err)) {
          throw busy(this.collectionId)
        }
        if (err instanceof CollectionMissing) {
          throw new MedusaError(
            MedusaError.Types.NOT_FOUND,
            `Payment collection with id ${this.collectionId} was not found`
          )
        }
        throw err
      }
    }
  }

  /** (2) once, without waiting. */
  async tryOnce<T>(work: LockedWork<T>): Promise<TryResult<T>> {
    try {
      const value = await this.transaction(work, Date.now() + this.timeouts.lockTimeoutMs)
      return { locked: true, value }
    } catch (err) {
      if (err instanceof CollectionBusy) {
        return { locked: false, reason: "busy" }
      }
      if (err instanceof CollectionMissing) {
        return { locked: false, reason: "missing" }
      }
      throw err
    }
  }

  private async transaction<T>(work: LockedWork<T>, deadline: number, customerId?: string): Promise<T> {
    return await this.manager.transaction(async (tx) => {
      const lockTimeoutMs = Math.max(1, deadline - Date.now())
      const timeouts = { lockTimeoutMs, idleTimeoutMs: this.timeouts.idleTimeoutMs }
      const read = await lockCollection(tx, this.decoder, this.collectionId, timeouts, customerId).catch((err) => {
        throw pgCode(err) === PG_LOCK_NOT_AVAILABLE ? new CollectionBusy() : err
      })
      if (!read) {
        throw new CollectionMissing(this.collectionId)
      }
      return await work(tx, read.collection, read)
    })
  }
}

function busy(collectionId: string): MedusaError {
  return conflictError(`Payment collection ${collectionId} is busy with another request; retry later`)
}

/** Another transaction holds the collection's row (NOWAIT said so). */
class CollectionBusy extends Error {}

class CollectionMissing extends Error {
  constructor(collectionId: string) {
    super(`Payment collection with id ${collectionId} was not found`)
  }
}

/**
 * Whether the transaction is gone: its connection died (a server or pooler
 * ended it: idle_in_transaction_session_timeout, idle_transaction_timeout, a
 * restart), and TypeORM released its query runner. Its row lock went with it:
 * another request may hold the collection now.
 */
export function transactionLost(tx: EntityManager): boolean {
  return tx.queryRunner?.isReleased === true
}
