/**
 * --large N: Lading's build, push and verify once on a corpus of scale N (N = 10 is about 20 GB),
 * added to an earlier full run's results (docs/benchmarks.json by default) so the document compares
 * them with its 1x rows: is time linear and memory flat? The peer is not run: its layout and tar
 * would need three more copies of the corpus on disk.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BUILD_BIN, fresh, ladingEnv, log, NODE, readJson } from '../lib/common.ts';
import type { Result } from '../lib/report.ts';
import { measure } from '../lib/run.ts';
import { runAtScale } from './double.ts';

export async function runLarge(scale: number, baseFile: string, command: string): Promise<Result> {
  const base = await readJson<Result>(baseFile);
  const loadavg = (await readFile('/proc/loadavg', 'utf8').catch(() => '')).trim();
  const tmp = await fresh('meta');
  const keyDir = await fresh('keys');
  const { env } = await ladingEnv();
  await measure(NODE, [BUILD_BIN, 'keys', 'generate', '--output', join(keyDir, 'release')], { tmp, env });
  log(`large run at scale ${scale}, compared with ${baseFile}`);
  const d = await runAtScale(scale, tmp, join(keyDir, 'release.key'), join(keyDir, 'release.pub'), {
    label: `scale ${scale}`,
    dropCorpus: true,
  });
  base.large = { command, generated: new Date().toISOString(), loadavg, ...d };
  return base;
}
