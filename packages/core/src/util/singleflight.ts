/**
 * Deduplicates concurrent work by key: a second caller for a key already in flight gets the
 * same promise (a blob in flight is never fetched twice).
 */
export class Singleflight<T> {
  private readonly inflight = new Map<string, Promise<T>>();

  do(key: string, fn: () => Promise<T>): Promise<T> {
    const existing = this.inflight.get(key);
    if (existing) return existing;
    const p = fn().finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }
}
