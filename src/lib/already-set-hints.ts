/**
 * Remembers, per process and for a bounded number of collections, the
 * provider a "Create a Payment Session" last set. It only decides whether a
 * repeated request first tries the lock-free read (see answerIfAlreadySet):
 * that read checks the database, so a stale hint costs one statement, never a
 * wrong answer. Without it every first request for a collection would pay for
 * a read that cannot succeed.
 */
export class AlreadySetHints {
  private readonly providerByCollection = new Map<string, string>()

  constructor(private readonly capacity = 10_000) {}

  remember(collectionId: string, providerId: string): void {
    this.providerByCollection.delete(collectionId)
    this.providerByCollection.set(collectionId, providerId)
    if (this.providerByCollection.size > this.capacity) {
      const oldest = this.providerByCollection.keys().next().value as string
      this.providerByCollection.delete(oldest)
    }
  }

  suggests(collectionId: string, providerId: string): boolean {
    return this.providerByCollection.get(collectionId) === providerId
  }
}
