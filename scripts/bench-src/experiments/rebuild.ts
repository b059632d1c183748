/**
 * rebuild: the same spec again with the warm cache of the build just measured (and its bundle
 * beside it); compared with a plain copy of the bundle's bytes (limit.copy).
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { NODE } from '../lib/common.ts';
import { measure } from '../lib/run.ts';
import { type Bench, createArgs, readJsonOr } from './bench.ts';

export async function rebuildLading(
  b: Bench,
  rep: number,
  env: NodeJS.ProcessEnv,
  home: string,
): Promise<void> {
  const { tmp } = b;
  const warmBundle = join(b.out, 'bench-warm.tar');
  const w = await measure(
    NODE,
    createArgs({ spec: b.spec, output: warmBundle, key: b.key, src: b.src, home, json: true }),
    { tmp, env, label: 'lading-build create (warm)', stdoutFile: join(tmp, 'rebuild.json') },
  );
  b.runs.record('rebuild.lading', rep, [w]);
  b.runs.ladingJson.rebuild = await readJsonOr(join(tmp, 'rebuild.json'));
  await rm(warmBundle, { force: true });
}
