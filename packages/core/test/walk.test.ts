import assert from 'node:assert/strict';
import type { Digest } from '../src/digest/index.ts';
import {
  type Descriptor,
  descriptorFor,
  encodeJson,
  InvalidManifestError,
  MediaType,
  manifestChildren,
  type ParsedManifest,
  walkDescriptors,
} from '../src/model/index.ts';

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

describe('manifestChildren: children read from stored manifests', () => {
  const json = (v: unknown): Buffer => encodeJson(v);
  const config = descriptorFor(json({}), MediaType.ociConfig);
  const layer = descriptorFor(Buffer.from('layer'), MediaType.ociLayerGzip);
  const image = descriptorFor(
    json({ schemaVersion: 2, mediaType: MediaType.ociManifest, config, layers: [layer] }),
    MediaType.ociManifest,
  );
  const sigBody = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config,
    layers: [layer],
    subject: image,
  };
  const sig = descriptorFor(json(sigBody), MediaType.ociManifest);
  const docs = new Map<string, Buffer>([
    [image.digest, json({ schemaVersion: 2, mediaType: MediaType.ociManifest, config, layers: [layer] })],
    [sig.digest, json(sigBody)],
  ]);
  const read = async (d: Descriptor) => docs.get(d.digest);
  const walk = async (children: (d: Descriptor) => Promise<Descriptor[] | undefined>) => {
    const seen: string[] = [];
    await walkDescriptors([sig], children, { enter: (d) => seen.push(d.digest) > 0 });
    return seen;
  };

  it("walks a manifest's subject as a child unless subject: false", async () => {
    assert.deepEqual(await walk(manifestChildren(read)), [
      sig.digest,
      config.digest,
      layer.digest,
      image.digest,
    ]);
    assert.deepEqual(await walk(manifestChildren(read, { subject: false })), [
      sig.digest,
      config.digest,
      layer.digest,
    ]);
  });

  it('visit sees each parsed manifest before its children; what it throws stops the walk', async () => {
    const visited: string[] = [];
    const visit = (d: Descriptor, parsed: ParsedManifest) => {
      visited.push(`${d.digest}:${parsed.kind}`);
    };
    await walk(manifestChildren(read, { visit }));
    assert.deepEqual(visited, [`${sig.digest}:manifest`, `${image.digest}:manifest`]);
    const stop = new Error('no');
    await assert.rejects(
      walk(
        manifestChildren(read, {
          visit: () => {
            throw stop;
          },
        }),
      ),
      (e) => e === stop,
    );
  });

  it('names a node that does not parse by `source`', async () => {
    const bad = descriptorFor(Buffer.from('not json'), MediaType.ociManifest);
    docs.set(bad.digest, Buffer.from('not json'));
    await assert.rejects(
      walkDescriptors([bad], manifestChildren(read, { source: (d) => `${d.digest} in the cache` })),
      (e: unknown) => e instanceof InvalidManifestError && e.subject === `${bad.digest} in the cache`,
    );
  });
});
