import { EventBusService, PaymentProviderService, TransactionBaseService } from "@medusajs/medusa"
import { MedusaError } from "medusa-core-utils"
import { EntityManager } from "typeorm"
import { CollectionLock } from "../lib/collection-lock"
import { CollectionRow, SessionRow, finishAuthorization } from "../lib/collection-queries"
import { CollectionWithPayments, collectionWithPayments } from "../lib/collection-response"
import { SESSION_STATUSES, markSessionRefused, writeAuthorization } from "../lib/collection-writes"
import { RequestInfo, workOnCollection } from "../lib/collection-work"
import { entityId } from "../lib/entity-id"
import { ProviderCalls } from "../lib/provider-calls"
import { ProviderClient, ProviderOutcome } from "../lib/provider-client"
import { providerFailure } from "../lib/provider-failure"
import { isAuthorized, statusForAuthorizedAmount } from "../lib/session-plan"
import { PluginOptions, ResolvedPluginOptions, resolveOptions } from "../types/options"
import type PaymentAttemptsService from "./payment-attempts"
import type PaymentReconcilerService from "./payment-reconciler"
import { PAYMENT_AUTHORIZED_EVENT } from "./payment-reconciler"

type InjectedDependencies = {
  manager: EntityManager
  paymentProviderService: PaymentProviderService
  paymentAttemptsService: PaymentAttemptsService
  paymentReconcilerService: PaymentReconcilerService
  eventBusService: EventBusService
  logger: { warn: (m: string) => void; error: (m: string) => void }
}

export type { CollectionWithPayments } from "../lib/collection-response"

export type AuthorizationResult = {
  collection: CollectionWithPayments
  /** Sessions whose provider refused (marked `error`). */
  refused: string[]
  /** The first provider that crashed or did not answer: the request's answer once the rest is committed. */
  unavailable?: MedusaError
}

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
  static readonly Events = { PAYMENT_AUTHORIZED: PAYMENT_AUTHORIZED_EVENT }

  protected readonly options_: ResolvedPluginOptions
  protected readonly client_: ProviderClient
  protected readonly attempts_: PaymentAttemptsService
  protected readonly reconciler_: PaymentReconcilerService
  protected readonly eventBusService_: EventBusService
  protected readonly logger_: InjectedDependencies["logger"]

  constructor(container: InjectedDependencies, options?: PluginOptions) {
    // eslint-disable-next-line prefer-rest-params
    super(container, options as Record<string, unknown>)
    this.options_ = resolveOptions(options)
    this.client_ = new ProviderClient(container.paymentProviderService, this.options_.provider_timeout_ms)
    this.attempts_ = container.paymentAttemptsService
    this.reconciler_ = container.paymentReconcilerService
    this.eventBusService_ = container.eventBusService
    this.logger_ = container.logger
  }

  /**
   * Authorizes the listed sessions that are not authorized yet. A session that
   * is already authorized is never sent to its provider again.
   */
  async authorizeSessions(
    collectionId: string,
    sessionIds: string[],
    context: Record<string, unknown> = {},
    request: RequestInfo = {}
  ): Promise<AuthorizationResult> {
    const deps = {
      options: this.options_,
      lock: new CollectionLock(this.manager_, this.options_.lock_timeout_ms),
      attempts: this.attempts_,
      reconciler: this.reconciler_,
      logger: this.logger_,
    }
    return await workOnCollection(deps, collectionId, request, async (tx, collection, calls, { sessions }) => {
      const known = new Set(sessions.map((s) => s.id))
      const foreign = sessionIds.filter((id) => !known.has(id))
      if (foreign.length) {
        throw new MedusaError(
          MedusaError.Types.NOT_FOUND,
          `Payment session ${foreign.join(", ")} does not belong to payment collection ${collection.id}`
        )
      }
      return await this.authorizeInLock(tx, collection, calls, sessions, new Set(sessionIds), context)
    })
  }

  protected async authorizeInLock(
    tx: EntityManager,
    collection: CollectionRow,
    calls: ProviderCalls,
    sessions: SessionRow[],
    requested: ReadonlySet<string>,
    context: Record<string, unknown>
  ): Promise<AuthorizationResult> {
    /** Payments written by this request (core lists them in the order it created them). */
    const createdPaymentIds = new Set<string>()
    /** Saves the collection's new status and authorized amount, if any, and answers it with its payments. */
    const answer = async (
      change: { status: string; authorizedAmount: number } | null,
      extra: Partial<AuthorizationResult> = {}
    ) => {
      const finished = await finishAuthorization(tx, collection.id, change && { ...change, committedAttemptIds: [] })
      return {
        collection: collectionWithPayments(finished.collection, sessions, finished.payments, createdPaymentIds),
        refused: [],
        ...extra,
      }
    }
    if (collection.status === "canceled") {
      throw new MedusaError(
        MedusaError.Types.NOT_ALLOWED,
        `Cannot authorize a payment collection with status ${collection.status}`
      )
    }
    if (collection.status === "authorized" && collection.authorized_amount === collection.amount) {
      return await answer(null)
    }
    if (collection.amount <= 0) {
      return await answer({ status: "authorized", authorizedAmount: 0 })
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

    const authorizedAmount = sessions.filter(isAuthorized).reduce((sum, s) => sum + (s.amount ?? 0), 0)
    const status = statusForAuthorizedAmount(authorizedAmount, collection.amount)
    if (!answered && (unavailable || (status === collection.status && authorizedAmount === collection.authorized_amount))) {
      // Nothing any provider said changed the collection.
      return await answer(null, { refused, unavailable })
    }
    await this.eventBusService_.withTransaction(tx).emit(PAYMENT_AUTHORIZED_EVENT, { id: collection.id })
    return await answer({ status, authorizedAmount }, { refused, unavailable })
  }

  /**
   * One session: ask its provider; write what it answered. A refusal marks
   * the session `error` (the shopper can change the sessions and try again);
   * a crash or a timeout leaves it as it was.
   */
  protected async authorizeOne(
    tx: EntityManager,
    collection: CollectionRow,
    calls: ProviderCalls,
    session: SessionRow,
    context: Record<string, unknown>
  ): Promise<
    | { kind: "written"; session: SessionRow; paymentId?: string }
    | { kind: "refused"; session: SessionRow }
    | { kind: "unavailable"; error: MedusaError }
  > {
    const providerId = session.provider_id
    const authorize = await calls.callWithId(
      { operation: "authorize", providerId, sessionId: session.id, amount: session.amount },
      () => this.client_.authorize(providerId, session, context, tx),
      (value) => ({ status: value.status, data: value.data })
    )
    const { outcome } = authorize
    if (outcome.kind === "refused") {
      return { kind: "refused", session: await markSessionRefused(tx, session.id, []) }
    }
    if (outcome.kind !== "ok") {
      return { kind: "unavailable", error: providerFailure(providerId, "authorize the payment", outcome, this.options_.provider_timeout_ms) }
    }
    const { status, data } = outcome.value
    if (!SESSION_STATUSES.includes(status)) {
      const invalid: ProviderOutcome<never> = {
        kind: "error",
        message: `it answered the unknown status ${JSON.stringify(status)}`,
        latencyMs: outcome.latencyMs,
      }
      return { kind: "unavailable", error: providerFailure(providerId, "authorize the payment", invalid, this.options_.provider_timeout_ms) }
    }
    if (status !== "authorized") {
      calls.willCommit(authorize.attemptId)
      const written = await writeAuthorization(tx, collection.id, {
        sessionId: session.id,
        status,
        data,
        committedAttemptIds: [authorize.attemptId],
      })
      return { kind: "written", session: written }
    }

    // The session as core hands it over after saving the authorization.
    const now = new Date()
    const authorizedSession = { ...session, data, status, payment_authorized_at: now, updated_at: now }
    const paymentData = await calls.callWithId(
      { operation: "retrieve", providerId, sessionId: session.id, amount: session.amount },
      () => this.client_.paymentData(providerId, authorizedSession, tx),
      () => null
    )
    if (paymentData.outcome.kind !== "ok") {
      // The authorization stands at the provider; it is recorded (adopted) once
      // the payment's data can be had. So even a refusal here is no refusal of
      // the shopper's request: the client is told the provider failed (502/504).
      const failed: ProviderOutcome<unknown> =
        paymentData.outcome.kind === "refused"
          ? { kind: "error", message: `it authorized the payment but refused its data: ${paymentData.outcome.message}`, latencyMs: paymentData.outcome.latencyMs }
          : paymentData.outcome
      return {
        kind: "unavailable",
        error: providerFailure(providerId, "retrieve the payment", failed, this.options_.provider_timeout_ms),
      }
    }
    calls.willCommit(authorize.attemptId)
    calls.willCommit(paymentData.attemptId)
    const paymentId = entityId("pay")
    const written = await writeAuthorization(tx, collection.id, {
      sessionId: session.id,
      status,
      data,
      payment: {
        id: paymentId,
        amount: session.amount ?? 0,
        currency_code: collection.currency_code,
        provider_id: providerId,
        data: paymentData.outcome.value,
      },
      committedAttemptIds: [authorize.attemptId, paymentData.attemptId],
    })
    return { kind: "written", session: written, paymentId }
  }
}
