import { abortable, isTransientError } from '../errors/index.ts';

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
      await abortable(new Promise((r) => setTimeout(r, delay).unref()), opts.signal);
    }
  }
}
