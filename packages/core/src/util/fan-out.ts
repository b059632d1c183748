import type { Limiter } from './limiter.ts';

/**
 * The one fail-fast fan-out: run `fn` for every item, concurrently (at most the limiter's
 * concurrency at once when one is given), each call with an inner signal. The first failure
 * aborts the inner signal so the other calls stop, and is thrown once every started call has
 * settled: nothing is still writing when this returns. An abort of `signal` aborts them all too
 * (the calls then fail with their abort errors, the first of which is thrown). Results come in
 * item order.
 */
export async function fanOut<T, R>(
  items: readonly T[],
  fn: (item: T, signal: AbortSignal, index: number) => Promise<R>,
  opts: { limiter?: Limiter; signal?: AbortSignal } = {},
): Promise<R[]> {
  const inner = new AbortController();
  const outer = opts.signal;
  const onAbort = (): void => inner.abort(outer?.reason);
  if (outer?.aborted) inner.abort(outer.reason);
  else outer?.addEventListener('abort', onAbort, { once: true });
  let failed = false;
  let first: unknown;
  const results: R[] = new Array(items.length);
  try {
    await Promise.allSettled(
      items.map(async (item, i) => {
        try {
          const run = (): Promise<R> => fn(item, inner.signal, i);
          results[i] = opts.limiter ? await opts.limiter.run(run, inner.signal) : await run();
        } catch (err) {
          if (!failed) {
            failed = true;
            first = err;
            inner.abort(err);
          }
        }
      }),
    );
  } finally {
    outer?.removeEventListener('abort', onAbort);
  }
  if (failed) throw first;
  return results;
}
