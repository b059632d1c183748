import assert from 'node:assert/strict';
import type { Digest } from '../src/digest/index.ts';
import { type Descriptor, walkDescriptors } from '../src/model/index.ts';

const node = (name: string): Descriptor => ({
  mediaType: 'application/octet-stream',
  digest: `sha256:${name.padStart(64, '0')}` as Digest,
  size: 1,
});

describe('walkDescriptors: the one graph walk', () => {
  // a → b, c; b → d; c → d (shared); e is a second root reaching b again
  const [a, b, c, d, e] = ['a', 'b', 'c', 'd', 'e'].map(node) as [
    Descriptor,
    Descriptor,
    Descriptor,
    Descriptor,
    Descriptor,
  ];
  const kids = new Map<string, Descriptor[]>([
    [a.digest, [b, c]],
    [b.digest, [d]],
    [c.digest, [d]],
    [e.digest, [b]],
  ]);
  const children = async (x: Descriptor) => kids.get(x.digest);

  it('visits depth-first, a node before its children in stored order, each digest once', async () => {
    const order: Descriptor[] = [];
    await walkDescriptors([a, e], children, { enter: (x) => order.push(x) > 0 });
    assert.deepEqual(order, [a, b, d, c, e]);
  });

  it('a node that enter refuses is not descended', async () => {
    const order: Descriptor[] = [];
    const enter = (x: Descriptor): boolean => {
      order.push(x);
      return x !== b;
    };
    await walkDescriptors([a], children, { enter });
    assert.deepEqual(order, [a, b, c, d]);
  });

  it('stops on abort', async () => {
    const ctrl = new AbortController();
    ctrl.abort(new Error('stop'));
    await assert.rejects(walkDescriptors([a], children, { signal: ctrl.signal }));
  });
});
