/**
 * build: Lading's cold `create` (empty cache) against skopeo copying every image into one OCI
 * layout and `tar -cf` of it. Lading's rebuild runs right after its build, with the same cache.
 */
import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fresh, ladingEnv, NODE, SKOPEO } from '../lib/common.ts';
import { measure, type Step } from '../lib/run.ts';
import { type Bench, createArgs, pair, peerEnv, readJsonOr } from './bench.ts';
import { rebuildLading } from './rebuild.ts';

export async function build(b: Bench, rep: number, ladingFirst: boolean, peerOnly: boolean): Promise<void> {
  await pair(ladingFirst, peerOnly ? async () => {} : () => buildLading(b, rep), () => buildPeer(b, rep));
}

async function buildLading(b: Bench, rep: number): Promise<void> {
  const { tmp, runs } = b;
  await rm(b.bundle, { force: true });
  const { env, home } = await ladingEnv();
  const s = await measure(
    NODE,
    createArgs({ spec: b.spec, output: b.bundle, key: b.key, src: b.src, home, json: true }),
    { tmp, env, label: 'lading-build create', stdoutFile: join(tmp, 'create.json') },
  );
  runs.record('build.lading', rep, [s]);
  runs.ladingJson.create = await readJsonOr(join(tmp, 'create.json'));
  b.bundleBytes = (await stat(b.bundle)).size;
  await rebuildLading(b, rep, env, home);
  await rm(home, { recursive: true, force: true }); // its content cache
}

async function buildPeer(b: Bench, rep: number): Promise<void> {
  const { tmp, corpus, src } = b;
  await rm(b.peerTar, { force: true });
  const layout = await fresh('peer-layout');
  const parts: Step[] = [];
  for (const img of corpus.images) {
    parts.push(
      await measure(
        SKOPEO,
        [
          '--insecure-policy',
          'copy',
          '--all',
          '--quiet',
          '--src-tls-verify=false',
          `docker://${src.host}/${img.name}:${img.tag}`,
          `oci:${layout}:${img.name}:${img.tag}`,
        ],
        { tmp, env: await peerEnv(), label: 'skopeo copy' },
      ),
    );
  }
  parts.push(await measure('tar', ['-cf', b.peerTar, '-C', layout, '.'], { tmp, label: 'tar -cf' }));
  await rm(layout, { recursive: true, force: true });
  b.runs.record('build.peer', rep, parts);
}
