import { EntityManager } from "typeorm"
import type PaymentAttemptsService from "../services/payment-attempts"
import type PaymentReconcilerService from "../services/payment-reconciler"
import { CollectionLock } from "./collection-lock"
import { CollectionRead, CollectionRow } from "./collection-queries"
import { ProviderCalls } from "./provider-calls"
import { ResolvedPluginOptions, requestBudgetMs } from "../types/options"

/** What a request tells the services about itself (journal rows name it). */
export type RequestInfo = {
  customerId?: string
  requestId?: string
  idempotencyKey?: string
}

export type CollectionWorkDeps = {
  options: ResolvedPluginOptions
  lock: CollectionLock
  attempts: PaymentAttemptsService
  reconciler: PaymentReconcilerService
  logger: { warn: (m: string) => void; error: (m: string) => void }
}

/**
 * A request's work on one collection: under the collection's lock, with its
 * provider calls journaled. Afterwards — committed or not — the request
 * finishes what its transaction did not settle (calls it did not commit,
 * removals to make at providers), still in its turn of the collection's queue.
 * A serialization failure or deadlock runs the work again only while no
 * provider was called.
 */
export async function workOnCollection<T>(
  deps: CollectionWorkDeps,
  collectionId: string,
  request: RequestInfo,
  work: (tx: EntityManager, collection: CollectionRow, calls: ProviderCalls, read: CollectionRead) => Promise<T>
): Promise<T> {
  const started = Date.now()
  return await deps.lock.run(collectionId, async (inQueue) => {
    const origin = {
      collectionId,
      currencyCode: null as string | null,
      requestId: request.requestId,
      idempotencyKey: request.idempotencyKey,
      deadline: started + requestBudgetMs(deps.options),
    }
    const calls = new ProviderCalls(deps.attempts, origin, deps.logger, (late) => deps.reconciler.finishLate(late))
    let committed = false
    try {
      const result = await inQueue.locked(
        async (tx, collection, read) => {
          origin.currencyCode = collection.currency_code
          return await work(tx, collection, calls, read)
        },
        { mayRetry: () => !calls.madeCalls }
      )
      committed = true
      return result
    } finally {
      await deps.reconciler.finishForRequest(inQueue, collectionId, calls.toFinish(committed), origin.deadline)
      calls.done()
    }
  })
}
