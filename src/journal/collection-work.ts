import { EntityManager } from "typeorm"
import { CollectionLock } from "../db/collection-lock"
import { CollectionRead, CollectionRow } from "../db/collection-queries"
import { ResolvedPluginOptions, requestBudgetMs } from "../types/options"
import { AttemptStore } from "./attempt-store"
import { Finisher } from "./finisher"
import { HeldAnswers } from "./held-answers"
import { JournaledCalls } from "./journaled-calls"

/** What a request tells the services about itself (journal rows name it). */
export type RequestInfo = {
  customerId?: string
  requestId?: string
  idempotencyKey?: string
}

export type CollectionWorkDeps = {
  options: ResolvedPluginOptions
  lock: CollectionLock
  store: AttemptStore
  heldAnswers: HeldAnswers
  finisher: Finisher
  logger: { warn: (m: string) => void; error: (m: string) => void }
}

export type CollectionWork<T> = (
  tx: EntityManager,
  collection: CollectionRow,
  calls: JournaledCalls,
  read: CollectionRead
) => Promise<T>

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
  work: CollectionWork<T>
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
    const calls = new JournaledCalls(deps.store, deps.heldAnswers, origin, deps.logger, (late) =>
      deps.finisher.finishLate(late)
    )
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
      await deps.finisher.finishForRequest(inQueue, collectionId, calls.toFinish(committed), origin.deadline)
      calls.done()
    }
  })
}
