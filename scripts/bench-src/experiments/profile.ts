/** --profile: create, push and verify once more under `node --cpu-prof`; where their CPU time goes. */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fmtSec, fresh, LOAD_BIN, ladingEnv, log, NODE, ROOT } from '../lib/common.ts';
import { type ProfileSummary, summariseDir } from '../lib/profile.ts';
import { measure, type Step } from '../lib/run.ts';
import { type Bench, createArgs, ladingTargetFlags, withRegistry } from './bench.ts';

export async function profileRun(b: Bench): Promise<Record<string, ProfileSummary[]>> {
  const { tmp, spec, key, pub, src, bundle } = b;
  const base = join(ROOT, 'bench-out', 'profiles');
  await rm(base, { recursive: true, force: true });
  const prof = (name: string): Record<string, string> => ({
    NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${join(base, name)}`,
  });
  const out: Record<string, ProfileSummary[]> = {};
  const b2 = join(await fresh('profile'), 'bench.tar');
  const c = await ladingEnv(prof('create'));
  const sc = await measure(NODE, createArgs({ spec, output: b2, key, src, home: c.home }), {
    tmp,
    env: c.env,
    label: 'profile create',
  });
  await rm(c.home, { recursive: true, force: true });
  await rm(b2, { force: true });
  let sp: Step | undefined;
  await withRegistry(b, async (dst) => {
    const p = await ladingEnv(prof('push'));
    sp = await measure(NODE, [LOAD_BIN, 'push', bundle, '--key', pub, ...ladingTargetFlags(dst)], {
      tmp,
      env: p.env,
      label: 'profile push',
    });
  });
  const v = await ladingEnv(prof('verify'));
  const sv = await measure(NODE, [LOAD_BIN, 'verify', bundle, '--key', pub], {
    tmp,
    env: v.env,
    label: 'profile verify',
  });
  for (const [name, st] of [
    ['create', sc],
    ['push', sp as Step],
    ['verify', sv],
  ] as const) {
    out[name] = await summariseDir(join(base, name));
    log(
      `profile ${name}: ${fmtSec(st.wallMs)} wall; ${out[name]
        .map((x) =>
          x.areas
            .slice(0, 4)
            .map((a) => `${a.area} ${a.pct}%`)
            .join(', '),
        )
        .join(' | ')}`,
    );
  }
  return out;
}
