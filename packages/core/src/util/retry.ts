import { isTransientError } from '../errors/index.ts';
import { RetryPolicy } from '../registry/retry.ts';

/** The backoff of `retryTransient`: the registry's policy (full jitter), capped at 4 s a pause. */
const POLICY = new RetryPolicy({ maxDelayMs: 4000 });

/**
 * Run `fn`, and again after a growing, jittered pause when it fails transiently (5xx after the
 * HTTP client's own retries, a dropped connection, a stall) — at most `retries` more times.
 * Each attempt starts over (a new fetch, a new upload). Anything else is thrown at once. The
 * pauses are the one retry policy's (`registry/retry.ts`), and so is what counts as transient.
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
      // A referenced timer: when the pause is all that is left to wait for, the process must wait
      // for it (an unref'd one let Node exit in the middle of a push with status 13).
      await POLICY.wait(POLICY.delayMs(n + 1) ?? 0, opts.signal);
    }
  }
}
