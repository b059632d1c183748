import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { fanOut, Limiter } from '../src/util/index.ts';

/** A call that runs until `signal` aborts, then takes 20 ms to stop (rejects). */
function stopsAfterAbort(signal: AbortSignal): Promise<void> {
  return new Promise<void>((_, reject) => {
    signal.addEventListener('abort', () => setTimeout(() => reject(new Error('aborted')), 20), {
      once: true,
    });
  });
}

describe('fanOut: the one fail-fast fan-out', () => {
  for (const [how, opts] of [
    ['the limiter concurrency', () => ({ limiter: new Limiter(2) })],
    ['`concurrency` (workers that take the items in order)', () => ({ concurrency: 2 })],
  ] as const) {
    it(`returns results in item order, at most ${how} at once`, async () => {
      let running = 0;
      let peak = 0;
      const out = await fanOut(
        [30, 5, 20, 1, 10],
        async (ms) => {
          running++;
          peak = Math.max(peak, running);
          await sleep(ms);
          running--;
          return ms * 2;
        },
        opts(),
      );
      assert.deepEqual(out, [60, 10, 40, 2, 20]);
      assert.equal(peak, 2);
    });
  }

  it('the first failure aborts the others, and is thrown only after every started call settled', async () => {
    const settled: number[] = [];
    const boom = new Error('boom');
    const err = await fanOut([0, 1, 2], async (i, signal) => {
      try {
        if (i === 1) throw boom;
        await stopsAfterAbort(signal);
      } finally {
        settled.push(i);
      }
    }).catch((e: unknown) => e);
    assert.equal(err, boom);
    assert.deepEqual(settled.sort(), [0, 1, 2], 'nothing may still run when fanOut returns');
  });

  it('an outer abort stops calls still queued behind the limiter', async () => {
    const ctrl = new AbortController();
    let started = 0;
    const p = fanOut(
      [1, 2, 3, 4],
      async (_i, signal) => {
        started++;
        ctrl.abort(new Error('stop'));
        signal.throwIfAborted();
      },
      { limiter: new Limiter(1), signal: ctrl.signal },
    );
    await assert.rejects(p);
    assert.equal(started, 1);
  });
});

describe('fanOut with concurrency (workers that take the items in order)', () => {
  it('after the first failure no further item starts; it is thrown once the started ones settled', async () => {
    const started: number[] = [];
    const settled: number[] = [];
    const boom = new Error('boom');
    const err = await fanOut(
      [0, 1, 2, 3, 4],
      async (i, signal) => {
        started.push(i);
        try {
          if (i === 1) throw boom;
          await stopsAfterAbort(signal);
        } finally {
          settled.push(i);
        }
      },
      { concurrency: 2 },
    ).catch((e: unknown) => e);
    assert.equal(err, boom);
    assert.deepEqual(started, [0, 1]);
    assert.deepEqual(settled.sort(), [0, 1]);
  });

  it('an outer abort starts no further item', async () => {
    const ctrl = new AbortController();
    const started: number[] = [];
    const p = fanOut(
      [0, 1, 2, 3, 4],
      async (i, signal) => {
        started.push(i);
        if (i === 1) ctrl.abort(new Error('stop'));
        await sleep(5);
        signal.throwIfAborted();
      },
      { concurrency: 2, signal: ctrl.signal },
    );
    await assert.rejects(p, /stop/);
    assert.deepEqual(started, [0, 1]);
  });
});
