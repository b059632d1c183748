/**
 * verify: Lading's `verify` of the bundle against an auditor's `tar -xf`, `openssl dgst -verify` of
 * SHA256SUMS and `sha256sum -c`.
 */
import { rm } from 'node:fs/promises';
import { fresh, LOAD_BIN, ladingEnv, NODE } from '../lib/common.ts';
import { measure, type Step } from '../lib/run.ts';
import { type Bench, pair } from './bench.ts';

export async function verify(b: Bench, rep: number, ladingFirst: boolean): Promise<void> {
  await pair(
    ladingFirst,
    () => verifyLading(b, rep),
    () => verifyPeer(b, rep),
  );
}

async function verifyLading(b: Bench, rep: number): Promise<void> {
  const { env } = await ladingEnv();
  const s = await measure(NODE, [LOAD_BIN, 'verify', b.bundle, '--key', b.pub], {
    tmp: b.tmp,
    env,
    label: 'lading-load verify',
  });
  b.runs.record('verify.lading', rep, [s]);
}

async function verifyPeer(b: Bench, rep: number): Promise<void> {
  const { tmp } = b;
  const dir = await fresh('auditor');
  const parts: Step[] = [];
  parts.push(await measure('tar', ['-xf', b.bundle, '-C', dir], { tmp, label: 'tar -xf' }));
  parts.push(
    await measure(
      'openssl',
      ['dgst', '-sha256', '-verify', b.pub, '-signature', 'SHA256SUMS.sig', 'SHA256SUMS'],
      {
        tmp,
        cwd: dir,
        label: 'openssl dgst -verify',
      },
    ),
  );
  parts.push(
    await measure('sha256sum', ['-c', '--quiet', 'SHA256SUMS'], {
      tmp,
      cwd: dir,
      label: 'sha256sum -c',
    }),
  );
  await rm(dir, { recursive: true, force: true });
  b.runs.record('verify.peer', rep, parts);
}
