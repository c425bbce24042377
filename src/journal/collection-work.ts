import { MedusaError } from "medusa-core-utils"
import { EntityManager } from "typeorm"
import { CollectionLock, InQueue, transactionLost } from "../db/collection-lock"
import { CollectionRead, CollectionRow, OpenCall } from "../db/collection-queries"
import { StoredAnswer, clientErrorAnswer } from "../lib/error-answer"
import { conflictError } from "../lib/errors"
import { ResolvedPluginOptions, requestBudgetMs } from "../types/options"
import { AttemptStore } from "./attempt-store"
import { Finisher } from "./finisher"
import { HeldAnswers } from "./held-answers"
import { AttemptRow } from "./attempt-types"
import { JournaledCalls, lockLost } from "./journaled-calls"

/** The Idempotency-Key a request claimed: its answer is stored with the request's rows. */
export type IdempotencyClaim = {
  keyId: string
  /** Set once the answer was committed with the rows: nothing is left to store. */
  settled: boolean
}

/** What a request tells the services about itself (journal rows name it). */
export type RequestInfo = {
  customerId?: string
  requestId?: string
  idempotencyKey?: string
  idempotencyClaim?: IdempotencyClaim
}

/** What a request's result comes to: the body it answers, or the error it ends with once committed. */
export type Decision<B> = { body: B } | { error: Error }

/**
 * How a request's result becomes its answer, decided inside its transaction:
 * `decide` maps the result, `save` (with an Idempotency-Key) writes the answer
 * in the transaction — undefined for one a retry should run again (409, 5xx).
 */
export type Answering<T, B> = {
  decide: (result: T) => Decision<B>
  save?: (tx: EntityManager, answer: StoredAnswer | undefined) => Promise<void>
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
) => Promise<T | CommittedFailure>

/**
 * What a unit of work answers when its changes must be committed and the
 * request still refused: e.g. an authorization found while asking before a
 * removal is recorded, and the removal refused.
 */
export class CommittedFailure {
  constructor(readonly error: Error) {}
}

/** The answer of a result that is its own answer but for its wrapping; a CommittedFailure ends the request with its error. */
export function answerWith<T, B>(wrap: (value: T) => B): (result: T | CommittedFailure) => Decision<B> {
  return (result) => (result instanceof CommittedFailure ? { error: result.error } : { body: wrap(result) })
}

/** A 409 that tells the client when to try again (the error handler sends Retry-After). */
export type RetryLaterError = MedusaError & { retry_after_seconds: number }

/** How often a request looks whether calls it waits for have answered. */
const WAIT_POLL_MS = 100

/**
 * A request's work on one collection: under the collection's lock, with its
 * provider calls journaled. Afterwards — committed or not — the request
 * finishes what its transaction did not settle (calls it did not commit,
 * removals to make at providers), still in its turn of the collection's queue.
 * A serialization failure or deadlock runs the work again only while no
 * provider was called.
 *
 * One call at a time per provider session: when a call on one of the
 * collection's sessions is still open (an update or authorize that timed out
 * and may still answer, or whose answer is not settled), the request settles
 * it first, or — while it is in flight — waits for its answer outside the
 * lock, up to `provider_timeout_ms`, then answers 409 with Retry-After.
 */
export async function workOnCollection<T, B>(
  deps: CollectionWorkDeps,
  collectionId: string,
  request: RequestInfo,
  work: CollectionWork<T>,
  answering: Answering<T | CommittedFailure, B>
): Promise<B> {
  const started = Date.now()
  const waitUntil = started + deps.options.provider_timeout_ms
  /** Open calls this request tried to settle: each once, then it answers 409. */
  const tried = new Set<string>()
  for (;;) {
    const turn = await deps.lock.run(collectionId, (inQueue) =>
      oneTurn(deps, inQueue, collectionId, request, started, tried, work, answering)
    )
    if (turn.kind === "done") {
      if (request.idempotencyClaim && answering.save) {
        request.idempotencyClaim.settled = true
      }
      // The deletes the committed transaction staged: made before the answer
      // (a client that has it finds the providers clean), but outside the
      // collection's queue and lock and the key's claim (its answer is stored),
      // bounded by the request's deadline; what is left is the reconciler's.
      await deps.finisher.finishStaged(turn.staged, turn.deadline)
      if ("error" in turn.decision) {
        throw turn.decision.error
      }
      return turn.decision.body
    }
    if (turn.retryAt || Date.now() >= waitUntil) {
      throw busySession(collectionId, turn.retryAt ?? turn.leaseEnd)
    }
    await waitForAnswers(deps.store, turn.inFlight, waitUntil)
  }
}

type Turn<B> =
  | { kind: "done"; decision: Decision<B>; staged: AttemptRow[]; deadline: number }
  /**
   * Nothing was done: calls still running (`inFlight`), or left open after
   * this request tried to settle them (`retryAt`: when they are tried again).
   */
  | { kind: "busy"; inFlight: string[]; retryAt?: Date; leaseEnd?: Date }

async function oneTurn<T, B>(
  deps: CollectionWorkDeps,
  inQueue: InQueue,
  collectionId: string,
  request: RequestInfo,
  started: number,
  tried: Set<string>,
  work: CollectionWork<T>,
  answering: Answering<T | CommittedFailure, B>
): Promise<Turn<B>> {
  const origin = {
    collectionId,
    currencyCode: null as string | null,
    requestId: request.requestId,
    idempotencyKey: request.idempotencyKey,
    deadline: started + requestBudgetMs(deps.options),
    holdsLock: undefined as (() => boolean) | undefined,
  }
  const calls = new JournaledCalls(deps.store, deps.heldAnswers, origin, deps.logger, (late) =>
    deps.finisher.finishLate(late)
  )
  let committed = false
  try {
    const result = await inQueue.locked(
      async (tx, collection, read): Promise<Turn<B>> => {
        const busy = await settleOpenCalls(deps, tx, collection, read.openCalls, tried, origin.deadline)
        if (busy) {
          return busy
        }
        origin.currencyCode = collection.currency_code
        origin.holdsLock = () => !transactionLost(tx)
        const decision = answering.decide(await work(tx, collection, calls, read))
        if (transactionLost(tx)) {
          // Nothing of it commits; its provider calls are settled below, under a new lock.
          throw lockLost()
        }
        // The answer commits with the rows it answers (Stripe's recovery point).
        await answering.save?.(tx, "body" in decision ? { status: 200, body: decision.body } : clientErrorAnswer(decision.error))
        return { kind: "done", decision, staged: [], deadline: origin.deadline }
      },
      { mayRetry: () => !calls.madeCalls, customerId: request.customerId }
    )
    committed = true
    if (result.kind === "done") {
      result.staged = calls.toFinish(true).filter((row) => calls.isStaged(row.id))
    }
    return result
  } finally {
    const rows = calls.toFinish(committed).filter((row) => !calls.isStaged(row.id))
    await deps.finisher.finishForRequest(inQueue, collectionId, rows, origin.deadline)
    calls.done()
  }
}

/**
 * The calls still open on the collection's sessions: those no longer running
 * are settled now, by the finisher, under this lock (in this transaction; the
 * next turn reads the collection again), each once per request — one still
 * open after that (its provider keeps failing) ends the request with 409 and
 * when to retry. Calls still running make the request wait for their answer.
 */
async function settleOpenCalls(
  deps: CollectionWorkDeps,
  tx: EntityManager,
  collection: CollectionRow,
  open: OpenCall[],
  tried: Set<string>,
  deadline: number
): Promise<Extract<Turn<never>, { kind: "busy" }> | undefined> {
  if (!open.length) {
    return undefined
  }
  const running = open.filter((call) => call.in_flight)
  if (running.length) {
    const leaseEnd = new Date(Math.min(...running.map((call) => Date.parse(call.lease_until))))
    return { kind: "busy", inFlight: running.map((call) => call.id), leaseEnd }
  }
  const again = open.filter((call) => tried.has(call.id))
  if (again.length) {
    const retryAt = again.map((call) => (call.retry_at ? Date.parse(call.retry_at) : Date.now() + 1000))
    return { kind: "busy", inFlight: [], retryAt: new Date(Math.min(...retryAt)) }
  }
  open.forEach((call) => tried.add(call.id))
  const rows = await deps.store.rows(open.map((call) => call.id))
  await deps.finisher.finishRows(rows, { tx, collection }, "request", deadline)
  return { kind: "busy", inFlight: [] }
}

/** Waits until none of `ids` is a call still running, or until `until`. */
async function waitForAnswers(store: AttemptStore, ids: string[], until: number): Promise<void> {
  while (ids.length && Date.now() < until) {
    if (!(await store.inFlight(ids)).length) {
      return
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(WAIT_POLL_MS, Math.max(1, until - Date.now()))))
  }
}

function busySession(collectionId: string, retryAt?: Date): RetryLaterError {
  const seconds = retryAt ? Math.max(1, Math.ceil((retryAt.getTime() - Date.now()) / 1000)) : 1
  const error = conflictError(
    `A payment provider has not yet settled an earlier call on a session of payment collection ${collectionId}; retry later`
  )
  return Object.assign(error, { retry_after_seconds: seconds })
}
