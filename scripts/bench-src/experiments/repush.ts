/**
 * re-push: the same bundle again into the registry that already holds it (a no-op), with and
 * without `--skip-verify`; skopeo's own no-op re-push for reference (measured once).
 */
import { rm } from 'node:fs/promises';
import type { RegistryServer } from '@lading/testkit';
import { fresh, LOAD_BIN, ladingEnv, NODE } from '../lib/common.ts';
import { measure, type Step } from '../lib/run.ts';
import { type Bench, ladingTargetFlags, skopeoPush } from './bench.ts';

/** Runs as the same user as the push before it (same `env`: push keeps a verification stamp in its state dir). */
export async function repushLading(
  b: Bench,
  rep: number,
  dst: RegistryServer,
  env: NodeJS.ProcessEnv,
): Promise<void> {
  const { tmp, runs } = b;
  const n = await measure(NODE, [LOAD_BIN, 'push', b.bundle, '--key', b.pub, ...ladingTargetFlags(dst)], {
    tmp,
    env,
    label: 'lading-load push (no-op)',
  });
  runs.record('repush.lading', rep, [n]);
  const { env: env3 } = await ladingEnv();
  const k = await measure(NODE, [LOAD_BIN, 'push', b.bundle, '--skip-verify', ...ladingTargetFlags(dst)], {
    tmp,
    env: env3,
    label: 'lading-load push --skip-verify (no-op)',
  });
  runs.record('repushsv.lading', rep, [k]);
}

/** skopeo's own no-op re-push (every blob is there), after `tar -xf` again: for reference. */
export async function repushPeer(b: Bench, rep: number, dst: RegistryServer): Promise<void> {
  const { tmp } = b;
  const dir2 = await fresh('peer-extract');
  const again: Step[] = [await measure('tar', ['-xf', b.peerTar, '-C', dir2], { tmp, label: 'tar -xf' })];
  for (const img of b.corpus.images) again.push(await skopeoPush(dir2, img, dst.host, tmp, 'skopeo copy'));
  await rm(dir2, { recursive: true, force: true });
  b.runs.record('repush.peer', rep, again);
}
