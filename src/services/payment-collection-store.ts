import { EntityManager } from "typeorm"
import { CollectionLock } from "../db/collection-lock"
import { CollectionRead, readCollection } from "../db/collection-queries"
import { RowDecoder } from "../db/row-shapes"
import { KeyedQueue } from "../lib/keyed-queue"
import { PluginOptions, resolveOptions, transactionIdleTimeoutMs } from "../types/options"

type InjectedDependencies = { manager: EntityManager }

/**
 * This process's way to the payment collection rows: the collection lock
 * (with the process's queue per collection in front of PostgreSQL's row lock)
 * and the lock-free read, both decoding rows with the process's RowDecoder.
 * One per process, so every request and the reconciler share the queue.
 */
export default class PaymentCollectionStoreService {
  static LIFE_TIME = "SINGLETON"

  readonly lock: CollectionLock
  readonly decoder = new RowDecoder()
  protected readonly manager_: EntityManager

  constructor(container: InjectedDependencies, options?: PluginOptions) {
    this.manager_ = container.manager
    const resolved = resolveOptions(options)
    const timeouts = { lockTimeoutMs: resolved.lock_timeout_ms, idleTimeoutMs: transactionIdleTimeoutMs(resolved) }
    this.lock = new CollectionLock(this.manager_, timeouts, new KeyedQueue(), this.decoder)
  }

  /** A collection with its sessions and region, from one snapshot, without a lock. */
  async read(collectionId: string): Promise<CollectionRead | undefined> {
    return await readCollection(this.manager_, this.decoder, collectionId)
  }
}
