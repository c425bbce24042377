import { Logger, OrderEditService, PaymentProviderService } from "@medusajs/medusa"
import { EntityManager } from "typeorm"
import { payerOf } from "../db/collection-payer"
import {
  orderEditOf,
  pruneProviderEvents,
  pruneStatusChecks,
  recordProviderEvent,
  scheduleCheck,
  sessionsToCheck,
} from "../db/collection-payments"
import { CollectionRow } from "../db/collection-queries"
import { isMedusaError } from "../lib/errors"
import { PluginOptions, ResolvedPluginOptions, resolveOptions } from "../types/options"
import type PaymentCollectionJournalService from "./payment-collection-journal"
import { MedusaError } from "medusa-core-utils"

type InjectedDependencies = {
  manager: EntityManager
  logger: Logger
  orderEditService: OrderEditService
  paymentProviderService: PaymentProviderService
  paymentCollectionJournalService: PaymentCollectionJournalService
}

/** What a provider tells the backend about one of its sessions (a webhook's object). */
export type ProviderUpdate = {
  /** The payment collection the session belongs to (Stripe: the intent's metadata.resource_id). */
  collectionId: string
  /** The session's provider data, as the provider sends it: its `id` names the session (a Stripe intent's `pi_…`). */
  data: Record<string, unknown>
  /** The provider, when known; otherwise the collection's session with that `data.id`, whatever its provider. */
  providerId?: string
  /** The event's own id, when it has one: an event delivered again is acted on once. */
  eventId?: string
}

export type UpdateOutcome = "adopted" | "captured" | "unchanged" | "duplicate" | "unknown session" | "no collection"

/** Sessions the status sync asks about in one pass. */
const SYNC_BATCH = 20
/** Never longer than this between two questions about one pending session. */
const MAX_CHECK_INTERVAL_MS = 60 * 60_000

/**
 * What providers tell the backend outside any request of the storefront —
 * webhooks, and the status sync for what no webhook said — applied to payment
 * collections under their lock: the provider's current answer decides, an
 * authorization found is recorded (with its payment), a capture made at the
 * provider is recorded on the payment, and an order edit paid in full that way
 * is completed as `POST /store/order-edits/:id/complete` completes it
 * (option `complete_order_edit_on_authorization`).
 *
 * `onProviderUpdate` is the entry point any provider's webhook handler can
 * call (medusa-payment-stripe's events reach it through the plugin's
 * subscriber).
 */
export default class PaymentCollectionProviderEventsService {
  static LIFE_TIME = "SINGLETON"

  protected readonly manager_: EntityManager
  protected readonly logger_: Logger
  protected readonly options_: ResolvedPluginOptions
  protected readonly journal_: PaymentCollectionJournalService
  protected readonly orderEditService_: OrderEditService
  protected readonly paymentProviderService_: PaymentProviderService

  constructor(container: InjectedDependencies, options?: PluginOptions) {
    this.manager_ = container.manager
    this.logger_ = container.logger
    this.options_ = resolveOptions(options)
    this.journal_ = container.paymentCollectionJournalService
    this.orderEditService_ = container.orderEditService
    this.paymentProviderService_ = container.paymentProviderService
  }

  /**
   * A provider says one of a collection's sessions changed: the provider is
   * asked about it (the update is a hint), and what it holds is recorded.
   * Safe against the storefront's own authorize at the same time (one
   * payment), and against the same event twice.
   */
  async onProviderUpdate(update: ProviderUpdate): Promise<UpdateOutcome> {
    const objectId = update.data?.id
    if (typeof objectId !== "string" || !objectId) {
      return "unknown session"
    }
    try {
      return await this.journal_.work(update.collectionId, {}, async (tx, collection, calls, { sessions }) => {
        if (update.eventId && !(await recordProviderEvent(tx, { id: update.eventId, providerId: update.providerId ?? "", collectionId: collection.id }))) {
          return "duplicate" as const
        }
        const session = sessions.find(
          (s) => s.data?.id === objectId && (update.providerId === undefined || s.provider_id === update.providerId)
        )
        if (!session) {
          return "unknown session" as const
        }
        const news = await this.journal_.providerNews.settle(tx, collection, calls, session)
        if (news.kind === "failed") {
          // Thrown, so the event bus may deliver it again; the status sync asks later anyway.
          throw new MedusaError(
            MedusaError.Types.UNEXPECTED_STATE,
            `Payment provider ${session.provider_id} did not tell the state of payment session ${session.id}`
          )
        }
        if (news.kind === "adopted") {
          await this.completeOrderEdit(tx, news.collection)
        }
        return news.kind
      })
    } catch (err) {
      if (isMedusaError(err, MedusaError.Types.NOT_FOUND)) {
        return "no collection"
      }
      throw err
    }
  }

  /**
   * The status sync (every reconciler pass): sessions still waiting for the
   * shopper, untouched for one reconcile interval (a storefront still at it
   * reports its own authorization) and changed within
   * `status_sync_window_hours`, are asked about with backoff — covering
   * providers without webhooks and endpoints that missed them. The questions
   * are not journaled (polls of pending sessions); what they find is. Answers
   * how many authorizations it recorded.
   */
  async syncStatuses(): Promise<number> {
    const { status_sync_window_hours: windowHours, reconcile_interval_ms: interval } = this.options_
    if (windowHours <= 0) {
      return 0
    }
    let adopted = 0
    for (const due of await sessionsToCheck(this.manager_, windowHours, interval, SYNC_BATCH)) {
      const checks = due.checks + 1
      await scheduleCheck(this.manager_, due.payment_session_id, checks, Math.min(MAX_CHECK_INTERVAL_MS, interval * 2 ** checks))
      try {
        const outcome = await this.journal_.work(due.payment_collection_id, {}, async (tx, collection, calls, { sessions }) => {
          const session = sessions.find((s) => s.id === due.payment_session_id)
          const news = session
            ? await this.journal_.providerNews.settle(tx, collection, calls, session, { journalAsk: false })
            : undefined
          if (news?.kind === "adopted") {
            await this.completeOrderEdit(tx, news.collection)
          }
          return news?.kind
        })
        adopted += outcome === "adopted" ? 1 : 0
      } catch (err) {
        this.logger_.warn(
          `medusa-plugin-payment-collections: status sync of payment session ${due.payment_session_id} failed (${(err as Error).message}); it is asked again later`
        )
      }
    }
    return adopted
  }

  /** Retention of the events acted on and of the sync's bookkeeping. */
  async prune(): Promise<number> {
    return (
      (await pruneProviderEvents(this.manager_, this.options_.attempt_retention_days)) +
      (await pruneStatusChecks(this.manager_, this.options_.status_sync_window_hours))
    )
  }

  /**
   * What `POST /store/order-edits/:id/complete` does once the collection is
   * authorized: its payments get the order, and the edit is confirmed (event
   * order-edit.confirmed) — in the same transaction as the authorization.
   */
  protected async completeOrderEdit(tx: EntityManager, collection: CollectionRow): Promise<void> {
    if (!this.options_.complete_order_edit_on_authorization || collection.status !== "authorized") {
      return
    }
    const edit = await orderEditOf(tx, collection.id)
    if (edit?.status !== "requested") {
      return
    }
    const payments: { id: string; order_id: string | null }[] = await tx.query(
      `SELECT p.id, p.order_id FROM payment_collection_payments pcp JOIN payment p ON p.id = pcp.payment_id
        WHERE pcp.payment_collection_id = $1`,
      [collection.id]
    )
    const providers = this.paymentProviderService_.withTransaction(tx)
    for (const payment of payments.filter((p) => p.order_id !== edit.order_id)) {
      await providers.updatePayment(payment.id, { order_id: edit.order_id })
    }
    const payer = await payerOf(tx, collection.id)
    await this.orderEditService_.withTransaction(tx).confirm(edit.id, { confirmedBy: payer.customer?.id ?? "" })
    this.logger_.info(
      `medusa-plugin-payment-collections: completed order edit ${edit.id}: payment collection ${collection.id} was authorized at its provider`
    )
  }
}
