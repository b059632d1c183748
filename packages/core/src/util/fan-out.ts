import type { Limiter } from './limiter.ts';

/**
 * The one fail-fast fan-out: run `fn` for every item, concurrently, each call with an inner
 * signal. At most the limiter's concurrency run at once when one is given (the calls queue in
 * the shared limiter); at most `concurrency` when that is given (workers take the items in order,
 * for calls that take the shared limiter themselves, inside). The first failure aborts the inner
 * signal so the other calls stop and no further item starts, and is thrown once every started
 * call has settled: nothing is still writing when this returns. An abort of `signal` aborts them
 * all too (the calls then fail with their abort errors, the first of which is thrown). Results
 * come in item order (an item never started has none).
 */
export async function fanOut<T, R>(
  items: readonly T[],
  fn: (item: T, signal: AbortSignal, index: number) => Promise<R>,
  opts: { limiter?: Limiter; concurrency?: number; signal?: AbortSignal } = {},
): Promise<R[]> {
  const inner = new AbortController();
  const outer = opts.signal;
  const onAbort = (): void => inner.abort(outer?.reason);
  if (outer?.aborted) inner.abort(outer.reason);
  else outer?.addEventListener('abort', onAbort, { once: true });
  let failed = false;
  let first: unknown;
  const results: R[] = new Array(items.length);
  const runOne = async (item: T, i: number): Promise<void> => {
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
  };
  try {
    if (opts.concurrency === undefined) {
      await Promise.all(items.map(runOne));
    } else {
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < items.length && !inner.signal.aborted) {
          const i = next++;
          await runOne(items[i] as T, i);
        }
      };
      const workers = Math.max(1, Math.min(Math.floor(opts.concurrency), items.length));
      await Promise.all(Array.from({ length: workers }, worker));
    }
  } finally {
    outer?.removeEventListener('abort', onAbort);
  }
  if (failed) throw first;
  return results;
}
