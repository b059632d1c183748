/** kill -9 of push at a random point, then a re-run: the registry must end as a clean push leaves it. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { log } from '../../bench-src/lib/common.ts';
import { lastError } from '../lib/proc.ts';
import { registryState, sameState, stateDiff } from '../lib/registry-state.ts';
import type { KillTrial } from '../lib/report.ts';
import { type Ctx, push, registry, stopRegistry } from './context.ts';

export async function killPush(ctx: Ctx): Promise<KillTrial[]> {
  const { trials, rnd } = ctx.opts;
  const out: KillTrial[] = [];
  for (let t = 1; t <= trials; t++) {
    const reg = await registry();
    const killAtMs = Math.round(rnd() * ctx.pushMs * 1.1);
    let midTransfer = false;
    const first = await push(ctx.clean, reg.host, ctx.pub, {
      killAtMs,
      beforeKill: () => {
        midTransfer = existsSync(join(reg.dataDir, 'docker', 'registry', 'v2'));
      },
    });
    const again = await push(ctx.clean, reg.host, ctx.pub);
    const state = await registryState(reg.url);
    await stopRegistry(reg);
    const ok = again.code === 0 && sameState(ctx.cleanState, state);
    const trial: KillTrial = {
      trial: t,
      killAtMs,
      killed: first.killed,
      midTransfer: first.killed && midTransfer,
      rerunExit: again.code,
      rerunMs: Math.round(again.ms),
      ok,
    };
    if (!ok) trial.problem = again.code !== 0 ? lastError(again) : stateDiff(ctx.cleanState, state);
    log(
      `kill push ${t}/${trials}: at ${killAtMs} ms (${first.killed ? (midTransfer ? 'mid-transfer' : 'before transfer') : 'had finished'}), re-run exit ${again.code}, ${ok ? 'registry identical' : `PROBLEM ${trial.problem}`}`,
    );
    out.push(trial);
  }
  return out;
}
