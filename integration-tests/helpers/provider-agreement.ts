import { ExtraBackend, startExtraBackend } from "./backend"
import { testEnv } from "./env"
import { psp } from "./fake-psp"
import { fakeStripe } from "./fake-stripe"
import { Api, createApi } from "./http"
import { attemptRows, AttemptRow } from "./journal"
import { linkedSessions, sleep } from "./payments"
import { RecordedEvent } from "./events"

// What the specs of "every provider effect accounted for" share: backends with
// small options, the two ways a case runs (on one backend, or failing on one
// and going on on another), whether the provider holds exactly what the
// database names, and how long it took to get there.

/**
 * A call answers 504 after 1 s and belongs to its request for 2 s (the lease);
 * the reconciler sweeps every half second; a finder's search concludes a
 * second after the call began.
 */
export const SMALL_OPTIONS = { provider_timeout_ms: 1000, reconcile_interval_ms: 500, finder_settle_ms: 1000 }

/** Two backend processes on the run's database, both with `options`. */
export async function startTwoBackends(options: Record<string, number> = SMALL_OPTIONS): Promise<{ backends: ExtraBackend[]; apis: Api[] }> {
  const env = { PAYMENT_COLLECTIONS_OPTIONS: JSON.stringify(options) }
  const backends = await Promise.all([startExtraBackend({ env }), startExtraBackend({ env })])
  return { backends, apis: backends.map((b) => createApi(b.url)) }
}

/**
 * How a case runs: the failing request on backend `failing`, whatever comes
 * after it (the shopper's retry, the next request, the admin) on backend `next`.
 */
export type Mode = { name: string; failing: number; next: number }
export const MODES: Mode[] = [
  { name: "on one backend", failing: 0, next: 0 },
  { name: "over two backends", failing: 0, next: 1 },
]

type Held = { id: string; amount: number }
const byId = (a: Held, b: Held) => a.id.localeCompare(b.id)

/** What the database names for a collection: each session holding a provider object, with its amount. */
async function namedByDatabase(collectionId: string): Promise<Held[]> {
  return (await linkedSessions(collectionId))
    .filter((s) => typeof s.data?.id === "string")
    .map((s) => ({ id: s.data.id as string, amount: s.amount as number }))
    .sort(byId)
}

export type Provider = "psp" | "stripe"

/** What the provider (the fake PSP or the fake Stripe) still holds for a collection: live objects, with amounts. */
async function heldByProvider(collectionId: string, provider: Provider): Promise<Held[]> {
  const live =
    provider === "psp"
      ? (await psp.liveIntents(collectionId)).map((i) => ({ id: i.id, amount: i.amount }))
      : (await fakeStripe.liveIntents(collectionId)).map((i) => ({ id: i.id, amount: i.amount }))
  return live.sort(byId)
}

/** The provider's live objects of a collection and the database's sessions, side by side. */
export async function providerAndDatabase(collectionId: string, provider: Provider = "psp") {
  const [held, named] = await Promise.all([heldByProvider(collectionId, provider), namedByDatabase(collectionId)])
  return { provider: held, database: named }
}

/** Whether the provider holds exactly what the database names, with the same amounts. */
export async function agree(collectionId: string, provider: Provider = "psp"): Promise<boolean> {
  const { provider: held, database } = await providerAndDatabase(collectionId, provider)
  return JSON.stringify(held) === JSON.stringify(database)
}

/**
 * Polls until the provider holds exactly what the database names; answers
 * how many ms after `since` that was first seen. Throws (with both sides)
 * after `timeoutMs`.
 */
export async function waitForAgreement(
  collectionId: string,
  since: number,
  { provider = "psp", timeoutMs = 20_000 }: { provider?: Provider; timeoutMs?: number } = {}
): Promise<number> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await agree(collectionId, provider)) return Date.now() - since
    if (Date.now() > deadline) {
      const sides = await providerAndDatabase(collectionId, provider)
      throw new Error(`provider and database still disagree after ${timeoutMs} ms: ${JSON.stringify(sides)}`)
    }
    await sleep(25)
  }
}

/** Polls the collection's journal until `done(rows)`; answers the rows and how many ms after `since`. */
export async function waitForJournal(
  collectionId: string,
  what: string,
  done: (rows: AttemptRow[]) => boolean,
  since: number,
  timeoutMs = 20_000
): Promise<{ rows: AttemptRow[]; ms: number }> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const rows = await attemptRows(collectionId)
    if (done(rows)) return { rows, ms: Date.now() - since }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}: ${JSON.stringify(rows.map((r) => [r.operation, r.state, r.outcome]))}`)
    }
    await sleep(50)
  }
}

const OPEN = ["started", "answered", "uncertain", "needs_attention"]
/** No row of the journal is open. */
export const allClosed = (rows: AttemptRow[]) => rows.every((r) => !OPEN.includes(r.state))

/** When the PSP received the failing call (its clock is this machine's): the moment of the failure. */
export async function pspCallAt(filter: Parameters<typeof psp.history>[0], index = 0): Promise<{ at: number; intentId: string | null; outcome: string }> {
  const calls = await psp.history(filter)
  const call = calls[index]
  if (!call) throw new Error(`the PSP saw no call ${JSON.stringify(filter)} #${index}: ${JSON.stringify(calls)}`)
  return { at: call.at, intentId: call.intentId, outcome: call.outcome }
}

/**
 * The events of this name every given backend's event-recorder received
 * (each backend's enqueuer may be the one that delivers a staged event).
 */
export async function eventsOn(urls: string[], event: string): Promise<RecordedEvent[]> {
  const all: RecordedEvent[] = []
  for (const url of urls) {
    const res = await createApi(url).get(`/event-recorder/events?event=${encodeURIComponent(event)}`)
    if (res.status !== 200) throw new Error(`GET ${url}/event-recorder/events answered ${res.status}: ${res.text}`)
    all.push(...res.body.events)
  }
  return all
}

/** Every backend of the run that may deliver an event: the shared one and these. */
export const allBackendUrls = (backends: ExtraBackend[]) => [testEnv().backendUrl, ...backends.map((b) => b.url)]

/**
 * The times a spec measured, printed once at its end: for each case, ms from
 * the failure until provider and database agree (and until the journal closed).
 */
export class Timings {
  private readonly entries: Record<string, Record<string, number>> = {}

  constructor(private readonly title: string) {}

  record(testCase: string, what: string, ms: number): void {
    ;(this.entries[testCase] ??= {})[what] = ms
  }

  print(): void {
    console.log(`${this.title}: ms from the failure until provider and database agree: ${JSON.stringify(this.entries, null, 2)}`)
  }
}
