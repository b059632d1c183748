/**
 * Before the experiments: the release key, the spec naming every corpus image in the source
 * registry, and the blob lists of the raw pull and upload.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RegistryServer } from '@lading/testkit';
import { BUILD_BIN, fresh, ladingEnv, NODE, specYaml } from '../lib/common.ts';
import type { Corpus } from '../lib/corpus.ts';
import type { Runs } from '../lib/report.ts';
import { measure } from '../lib/run.ts';
import type { Bench } from './bench.ts';

export async function prepare(opts: {
  runs: Runs;
  tmp: string;
  corpus: Corpus;
  src: RegistryServer;
  registries: RegistryServer[];
  conc: number;
  pullConc: number;
}): Promise<Bench> {
  const { tmp, corpus, src } = opts;
  const keyDir = await fresh('keys');
  const { env: kenv } = await ladingEnv();
  await measure(NODE, [BUILD_BIN, 'keys', 'generate', '--output', join(keyDir, 'release')], {
    tmp,
    env: kenv,
  });
  const key = join(keyDir, 'release.key');
  const pub = join(keyDir, 'release.pub');
  const refs = corpus.images.map((i) => `${src.host}/${i.name}:${i.tag}`);
  const spec = join(keyDir, 'lading.yaml');
  await writeFile(spec, specYaml('bench', '1.0.0', refs));
  const blobList = join(tmp, 'blobs.txt');
  await writeFile(
    blobList,
    corpus.blobs
      .map(
        (b) =>
          `${b.repo}/${b.mediaType.includes('manifest') || b.mediaType.includes('index') ? 'manifests' : 'blobs'}/${b.digest}\n`,
      )
      .join(''),
  );
  const uploadList = join(tmp, 'upload.txt');
  await writeFile(
    uploadList,
    corpus.blobs
      .map((b) => `${b.digest} ${join(corpus.layoutDir, 'blobs/sha256', b.digest.slice(7))}\n`)
      .join(''),
  );
  const out = await fresh('out');
  return {
    ...opts,
    spec,
    key,
    pub,
    blobList,
    uploadList,
    out,
    bundle: join(out, 'bench.tar'),
    peerTar: join(out, 'peer.tar'),
    bundleBytes: 0,
  };
}
