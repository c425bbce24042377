import { TransactionBaseService } from "@medusajs/medusa"
import { MedusaError } from "medusa-core-utils"
import { EntityManager } from "typeorm"
import { CollectionRow, SessionRow } from "../db/collection-queries"
import { CollectionWithPayments, collectionWithPayments } from "../db/collection-response"
import { SESSION_STATUSES, markSessionRefused, writeAuthorization } from "../db/collection-writes"
import { CommittedFailure, Decision, RequestInfo } from "../journal/collection-work"
import { JournaledCalls } from "../journal/journaled-calls"
import { ProviderOutcome } from "../providers/provider-client"
import { providerFailure } from "../providers/provider-failure"
import { authorizationStatusOf } from "../rules/collection-status"
import { isAuthorized } from "../rules/session-plan"
import { PluginOptions, ResolvedPluginOptions, resolveOptions } from "../types/options"
import type PaymentCollectionJournalService from "./payment-collection-journal"

type InjectedDependencies = {
  manager: EntityManager
  paymentCollectionJournalService: PaymentCollectionJournalService
}

export type { CollectionWithPayments } from "../db/collection-response"

/** What one authorization request came to, all of it committed. */
type AuthorizationResult = {
  collection: CollectionWithPayments
  /** Sessions whose provider refused (marked `error`). */
  refused: string[]
  /** The first provider that crashed or did not answer: the request's answer once the rest is committed. */
  unavailable?: MedusaError
}

type OneSession =
  | { kind: "written"; session: SessionRow; paymentId?: string }
  | { kind: "refused"; session: SessionRow }
  | { kind: "unavailable"; error: MedusaError }

/**
 * "Authorize Payment Sessions" and "Authorize Payment Session". Sessions are
 * authorized one after the other under the collection's lock; each
 * authorization a provider reports is written at once (session `authorized`,
 * its payment, the join row), and what one provider does — refuse, crash, time
 * out — never takes back what another one authorized: the request commits
 * every result and then answers with the failure. An authorization that its
 * transaction could not record is recorded afterwards (adopted), never voided.
 */
export default class PaymentCollectionAuthorizationService extends TransactionBaseService {
  static LIFE_TIME = "SINGLETON"
  static readonly Events = { PAYMENT_AUTHORIZED: "payment-collection.payment_authorized" }

  protected readonly options_: ResolvedPluginOptions
  protected readonly journal_: PaymentCollectionJournalService

  constructor(container: InjectedDependencies, options?: PluginOptions) {
    super(container, options as Record<string, unknown>)
    this.options_ = resolveOptions(options)
    this.journal_ = container.paymentCollectionJournalService
  }

  /**
   * "Authorize Payment Sessions": authorizes the listed sessions that are not
   * authorized yet (one already authorized is never sent to its provider
   * again). Answers the collection; after committing every result, a provider
   * that crashed or did not answer is the error (502/504), one that refused is
   * 422.
   */
  async authorizeSessions(
    collectionId: string,
    sessionIds: string[],
    context: Record<string, unknown> = {},
    request: RequestInfo = {}
  ): Promise<{ payment_collection: CollectionWithPayments }> {
    return await this.authorize(collectionId, sessionIds, context, request, ({ collection, refused, unavailable }): Decision<{ payment_collection: CollectionWithPayments }> => {
      if (unavailable) {
        return { error: unavailable }
      }
      if (refused.length) {
        return {
          error: new MedusaError(
            MedusaError.Types.PAYMENT_AUTHORIZATION_ERROR,
            `The payment provider refused to authorize payment session ${refused.join(", ")}`
          ),
        }
      }
      return { body: { payment_collection: collection } }
    })
  }

  /** "Authorize Payment Session": the session, or 422 when the provider did not authorize it. */
  async authorizeSession(
    collectionId: string,
    sessionId: string,
    context: Record<string, unknown> = {},
    request: RequestInfo = {}
  ): Promise<{ payment_session: SessionRow }> {
    return await this.authorize(collectionId, [sessionId], context, request, ({ collection, unavailable }): Decision<{ payment_session: SessionRow }> => {
      if (unavailable) {
        return { error: unavailable }
      }
      const session = collection.payment_sessions.find((s) => s.id === sessionId)
      if (session?.status !== "authorized") {
        return {
          error: new MedusaError(
            MedusaError.Types.PAYMENT_AUTHORIZATION_ERROR,
            `Failed to authorize Payment Session id "${sessionId}"`
          ),
        }
      }
      return { body: { payment_session: session } }
    })
  }

  /** Authorizes under the lock; `decide` turns what happened into the answer, inside the transaction. */
  protected async authorize<B>(
    collectionId: string,
    sessionIds: string[],
    context: Record<string, unknown>,
    request: RequestInfo,
    decide: (result: AuthorizationResult) => Decision<B>
  ): Promise<B> {
    return await this.journal_.work(
      collectionId,
      request,
      async (tx, collection, calls, { sessions }) => {
        const known = new Set(sessions.map((s) => s.id))
        const foreign = sessionIds.filter((id) => !known.has(id))
        if (foreign.length) {
          throw new MedusaError(
            MedusaError.Types.NOT_FOUND,
            `Payment session ${foreign.join(", ")} does not belong to payment collection ${collection.id}`
          )
        }
        return await this.authorizeInLock(tx, collection, calls, sessions, new Set(sessionIds), context)
      },
      (result) => (result instanceof CommittedFailure ? { error: result.error } : decide(result))
    )
  }

  protected async authorizeInLock(
    tx: EntityManager,
    collection: CollectionRow,
    calls: JournaledCalls,
    sessions: SessionRow[],
    requested: ReadonlySet<string>,
    context: Record<string, unknown>
  ): Promise<AuthorizationResult> {
    const { recorder } = this.journal_
    /** Payments written by this request (core lists them in the order it created them). */
    const createdPaymentIds = new Set<string>()
    const answer = (saved: { collection: CollectionRow; payments: Record<string, unknown>[] }, extra: Partial<AuthorizationResult> = {}) => ({
      collection: collectionWithPayments(saved.collection, sessions, saved.payments, createdPaymentIds),
      refused: [],
      ...extra,
    })
    if (collection.status === "canceled") {
      throw new MedusaError(
        MedusaError.Types.NOT_ALLOWED,
        `Cannot authorize a payment collection with status ${collection.status}`
      )
    }
    if (collection.status === "authorized" && collection.authorized_amount === collection.amount) {
      return answer(await recorder.read(tx, collection))
    }
    if (collection.amount <= 0) {
      return answer(await recorder.saveStatus(tx, collection, [], { emit: false }))
    }
    if (!sessions.length) {
      throw new MedusaError(
        MedusaError.Types.NOT_ALLOWED,
        "You cannot complete a Payment Collection without a payment session."
      )
    }

    const refused: string[] = []
    let unavailable: MedusaError | undefined
    /** Whether a provider answered about a session (a crash or a timeout is no answer). */
    let answered = false
    // `sessions` is kept in step with what is written, for the answer.
    for (const [index, session] of sessions.entries()) {
      if (isAuthorized(session) || !requested.has(session.id)) {
        continue
      }
      const result = await this.authorizeOne(tx, collection, calls, session, context)
      if (result.kind === "unavailable") {
        unavailable ??= result.error
        continue
      }
      answered = true
      sessions[index] = result.session
      if (result.kind === "written" && result.paymentId) {
        createdPaymentIds.add(result.paymentId)
      }
      if (result.kind === "refused") {
        refused.push(session.id)
      }
    }

    const { status, authorizedAmount } = authorizationStatusOf(collection, sessions)
    if (!answered && (unavailable || (status === collection.status && authorizedAmount === collection.authorized_amount))) {
      // Nothing any provider said changed the collection.
      return answer(await recorder.read(tx, collection), { refused, unavailable })
    }
    return answer(await recorder.saveStatus(tx, collection, sessions), { refused, unavailable })
  }

  /**
   * One session: ask its provider; write what it answered. A refusal marks
   * the session `error` (the shopper can change the sessions and try again);
   * a crash or a timeout leaves it as it was.
   */
  protected async authorizeOne(
    tx: EntityManager,
    collection: CollectionRow,
    calls: JournaledCalls,
    session: SessionRow,
    context: Record<string, unknown>
  ): Promise<OneSession> {
    const providerId = session.provider_id
    const timeoutMs = this.options_.provider_timeout_ms
    const authorize = await calls.call(
      { operation: "authorize", providerId, sessionId: session.id, amount: session.amount, answerWithRows: true },
      () => this.journal_.client.authorize(providerId, session, context, tx),
      (value) => ({ status: value.status, data: value.data })
    )
    const { outcome } = authorize
    if (outcome.kind === "refused") {
      return { kind: "refused", session: await markSessionRefused(tx, session.id) }
    }
    if (outcome.kind !== "ok") {
      return { kind: "unavailable", error: providerFailure(providerId, "authorize the payment", outcome, timeoutMs) }
    }
    const { status, data } = outcome.value
    if (!SESSION_STATUSES.includes(status)) {
      const invalid: ProviderOutcome<never> = {
        kind: "error",
        message: `it answered the unknown status ${JSON.stringify(status)}`,
        latencyMs: outcome.latencyMs,
      }
      return { kind: "unavailable", error: providerFailure(providerId, "authorize the payment", invalid, timeoutMs) }
    }
    if (status !== "authorized") {
      calls.willCommit(authorize.attemptId)
      const written = await writeAuthorization(tx, collection.id, {
        sessionId: session.id,
        status,
        data,
        committed: calls.committedAttempts([authorize.attemptId]),
      })
      return { kind: "written", session: written }
    }

    const recorded = await this.journal_.recorder.record(tx, collection, calls, session, data, [authorize.attemptId])
    if (!recorded.ok) {
      // The authorization stands at the provider; it is recorded (adopted) once
      // the payment's data can be had. So even a refusal here is no refusal of
      // the shopper's request: the client is told the provider failed (502/504).
      const failed: ProviderOutcome<unknown> =
        recorded.outcome.kind === "refused"
          ? { kind: "error", message: `it authorized the payment but refused its data: ${recorded.outcome.message}`, latencyMs: recorded.outcome.latencyMs }
          : recorded.outcome
      return { kind: "unavailable", error: providerFailure(providerId, "retrieve the payment", failed, timeoutMs) }
    }
    return { kind: "written", session: recorded.session, paymentId: recorded.paymentId }
  }
}
