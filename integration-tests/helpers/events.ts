import { api } from "./http"

/**
 * The events the shared backend's event bus delivered to subscribers, as seen
 * by the event-recorder fixture plugin (integration-tests/fixtures/event-recorder).
 * Core stages an event in `staged_job` inside the emitting transaction; the
 * backend's enqueuer hands it to the event bus every ~3 s, so delivery lags.
 */
export interface RecordedEvent {
  event: string
  data: any
  at: number
}

export async function recordedEvents(event?: string): Promise<RecordedEvent[]> {
  const res = await api.get(`/event-recorder/events${event ? `?event=${encodeURIComponent(event)}` : ""}`)
  if (res.status !== 200) throw new Error(`GET /event-recorder/events answered ${res.status}: ${res.text}`)
  return res.body.events
}

/**
 * Polls until `predicate` holds for the delivered events named `event`, and
 * returns them; after `timeoutMs` returns what was delivered (the caller's
 * assertion then fails with the actual list).
 */
export async function waitForEvents(
  event: string,
  predicate: (events: RecordedEvent[]) => boolean,
  timeoutMs = 20_000
): Promise<RecordedEvent[]> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const events = await recordedEvents(event)
    if (predicate(events) || Date.now() > deadline) return events
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
}
