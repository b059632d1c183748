/**
 * push: Lading's `push` of the bundle into a fresh registry (with the extra disk it uses) against
 * `tar -xf` and skopeo per image. The no-op re-pushes follow, into the same registry.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fresh, LOAD_BIN, ladingEnv, NODE } from '../lib/common.ts';
import { diskWatcher } from '../lib/disk-watcher.ts';
import { duBytes, measure, type Step } from '../lib/run.ts';
import { type Bench, ladingTargetFlags, pair, readJsonOr, skopeoPush, withRegistry } from './bench.ts';
import { repushLading, repushPeer } from './repush.ts';

export async function push(b: Bench, rep: number, ladingFirst: boolean, peerOnly: boolean): Promise<void> {
  await pair(ladingFirst, peerOnly ? async () => {} : () => pushLading(b, rep), () => pushPeer(b, rep));
}

async function pushLading(b: Bench, rep: number): Promise<void> {
  const { tmp, runs } = b;
  await withRegistry(b, async (dst) => {
    const { env, home, tmp: ptmp } = await ladingEnv();
    const disk = await diskWatcher([home, ptmp, b.out], [b.bundle, b.peerTar], dst.dataDir, b.out);
    const s = await measure(
      NODE,
      [LOAD_BIN, 'push', b.bundle, '--key', b.pub, '--json', ...ladingTargetFlags(dst)],
      {
        tmp,
        env,
        stdoutFile: join(tmp, 'push.json'),
        label: 'lading-load push',
        sample: disk.sample,
        sampleMs: 200,
      },
    );
    await disk.sample();
    runs.record('push.lading', rep, [s], disk.peak());
    runs.ladingJson.push = await readJsonOr(join(tmp, 'push.json'));
    runs.fsDelta.push(disk.fsPeak());
    await repushLading(b, rep, dst, env);
  });
}

async function pushPeer(b: Bench, rep: number): Promise<void> {
  const { tmp, corpus } = b;
  await withRegistry(b, async (dst) => {
    const dir = await fresh('peer-extract');
    const parts: Step[] = [];
    let peak = 0;
    const sampleDir = async (): Promise<void> => {
      peak = Math.max(peak, await duBytes(dir));
    };
    parts.push(await measure('tar', ['-xf', b.peerTar, '-C', dir], { tmp, label: 'tar -xf' }));
    await sampleDir();
    for (const img of corpus.images) parts.push(await skopeoPush(dir, img, dst.host, tmp, 'skopeo copy'));
    await rm(dir, { recursive: true, force: true });
    b.runs.record('push.peer', rep, parts, peak);
    if (rep > 1) return; // skopeo's no-op re-push: a reference, measured once
    await repushPeer(b, rep, dst);
  });
}
