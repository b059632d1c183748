/**
 * The machine's limits each row is held against: hashing and reading the bundle, copying its bytes,
 * pulling every blob (into files, and not), uploading every blob, and Node's start-up.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { LOAD_BIN, ladingEnv, NODE, ROOT } from '../lib/common.ts';
import { measure } from '../lib/run.ts';
import { type Bench, withRegistry } from './bench.ts';

export async function limits(b: Bench, rep: number): Promise<void> {
  const { tmp, runs, bundle, out, pullConc, conc } = b;
  runs.record('limit.openssl', rep, [
    await measure('openssl', ['dgst', '-sha256', bundle], { tmp, label: 'openssl dgst -sha256' }),
  ]);
  runs.record('limit.startup', rep, [
    await measure(NODE, [LOAD_BIN, '--version'], {
      tmp,
      env: (await ladingEnv()).env,
      label: 'lading-load --version',
    }),
  ]);
  runs.record('limit.sha256sum', rep, [await measure('sha256sum', [bundle], { tmp, label: 'sha256sum' })]);
  runs.record('limit.cat', rep, [
    await measure('sh', ['-c', 'cat "$1" >/dev/null', 'cat', bundle], { tmp, label: 'cat > /dev/null' }),
  ]);
  runs.record('limit.copy', rep, [
    await measure(
      'sh',
      ['-c', 'cp "$1" "$2" && sync "$2"; rm -f "$2"', 'cp', bundle, join(out, 'copy.tar')],
      {
        tmp,
        label: 'cp bundle + sync',
      },
    ),
  ]);
  const dir = join(out, 'pulled');
  runs.record('limit.pullwrite', rep, [
    await measure(
      join(ROOT, 'scripts/bench-src/raw-pull-write.sh'),
      [b.src.url, b.blobList, String(pullConc), dir],
      {
        tmp,
        label: `curl GET ×${pullConc} into files + sync`,
      },
    ),
  ]);
  await rm(dir, { recursive: true, force: true });
  runs.record('limit.pull', rep, [
    await measure(join(ROOT, 'scripts/bench-src/raw-pull.sh'), [b.src.url, b.blobList, String(pullConc)], {
      tmp,
      label: `curl GET ×${pullConc}`,
    }),
  ]);
  await withRegistry(b, async (dst) => {
    runs.record('limit.upload', rep, [
      await measure(
        join(ROOT, 'scripts/bench-src/raw-upload.sh'),
        [dst.url, 'limit/upload', b.uploadList, String(conc)],
        {
          tmp,
          label: `curl POST+PUT ×${conc}`,
        },
      ),
    ]);
  });
}
