import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { bytesStream } from '../src/content/index.ts';
import { ExitCode } from '../src/errors/index.ts';
import { OciLayout } from '../src/layout/index.ts';
import { type Descriptor, descriptorFor, encodeJson, MediaType } from '../src/model/index.ts';
import { artifactNodes, ReferrerSubjectError } from '../src/provenance/index.ts';

describe('artifactNodes: a supply-chain artifact through the one walk', () => {
  let dir: string;
  let layout: OciLayout;
  const put = async (bytes: Buffer, mediaType: string): Promise<Descriptor> => {
    const d = descriptorFor(bytes, mediaType);
    await layout.push(d, bytesStream(bytes));
    return d;
  };
  const strip = (d: Descriptor): Descriptor => ({ mediaType: d.mediaType, digest: d.digest, size: d.size });
  let image: Descriptor;
  let config: Descriptor;
  let sbom: Descriptor;
  let referrer: Descriptor;
  let index: Descriptor;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lading-artifact-'));
    layout = await OciLayout.open(path.join(dir, 'cache'), { create: true });
    config = await put(encodeJson({}), MediaType.ociConfig);
    const layer = await put(Buffer.from('image layer'), MediaType.ociLayerGzip);
    image = await put(
      encodeJson({ schemaVersion: 2, mediaType: MediaType.ociManifest, config, layers: [layer] }),
      MediaType.ociManifest,
    );
    sbom = await put(Buffer.from('{"sbom":true}'), 'application/spdx+json');
    // the referrer repeats the config: listed once
    const body = {
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config,
      layers: [sbom, config],
      subject: image,
    };
    referrer = await put(encodeJson(body), MediaType.ociManifest);
    index = await put(
      encodeJson({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [referrer], subject: image }),
      MediaType.ociIndex,
    );
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('lists the root first, then its nodes depth-first, each once, never the subject', async () => {
    assert.deepEqual(await artifactNodes(layout, referrer, { subject: image.digest }), [
      strip(referrer),
      strip(config),
      strip(sbom),
    ]);
    assert.deepEqual(await artifactNodes(layout, index, { subject: image.digest }), [
      strip(index),
      strip(referrer),
      strip(config),
      strip(sbom),
    ]);
  });

  it('a root whose subject is another digest is refused (exit 2), named by source', async () => {
    await assert.rejects(
      artifactNodes(layout, referrer, { subject: config.digest, source: 'demo/app referrer' }),
      (e: unknown) =>
        e instanceof ReferrerSubjectError &&
        e.exitCode === ExitCode.usage &&
        e.message.startsWith('demo/app referrer: listed as a referrer of'),
    );
  });

  it('only the root is held to the subject: a child manifest naming another subject is walked', async () => {
    const other = await put(
      encodeJson({
        schemaVersion: 2,
        mediaType: MediaType.ociManifest,
        config,
        layers: [sbom],
        subject: config,
      }),
      MediaType.ociManifest,
    );
    const outer = await put(
      encodeJson({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [other], subject: image }),
      MediaType.ociIndex,
    );
    assert.deepEqual(await artifactNodes(layout, outer, { subject: image.digest }), [
      strip(outer),
      strip(other),
      strip(config),
      strip(sbom),
    ]);
    await assert.rejects(artifactNodes(layout, outer, { subject: config.digest }), ReferrerSubjectError);
  });
});
