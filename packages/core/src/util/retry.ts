import { setTimeout as sleep } from 'node:timers/promises';
import { AbortedError, isTransientError } from '../errors/index.ts';

/**
 * Run `fn`, and again after a growing, jittered pause when it fails transiently (5xx after the
 * HTTP client's own retries, a dropped connection, a stall) — at most `retries` more times.
 * Each attempt starts over (a new fetch, a new upload). Anything else is thrown at once.
 */
export async function retryTransient<T>(
  fn: () => Promise<T>,
  opts: { retries?: number; signal?: AbortSignal } = {},
): Promise<T> {
  const retries = opts.retries ?? 3;
  for (let n = 0; ; n++) {
    try {
      return await fn();
    } catch (err) {
      if (n >= retries || opts.signal?.aborted || !isTransientError(err)) throw err;
      const delay = Math.min(4000, 250 * 2 ** n) * (0.5 + Math.random() / 2);
      // A referenced timer: when the pause is all that is left to wait for, the process must wait
      // for it (an unref'd one let Node exit in the middle of a push with status 13).
      try {
        await sleep(delay, undefined, opts.signal ? { signal: opts.signal } : undefined);
      } catch {
        throw new AbortedError('operation aborted while waiting to retry', { cause: opts.signal?.reason });
      }
    }
  }
}
