/**
 * kill -9 of create at a random point, then a re-run with the same cache: nothing partial at the
 * output path, and the re-run's bundle byte-identical to the clean one.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fresh, log } from '../../bench-src/lib/common.ts';
import { lastError } from '../lib/proc.ts';
import type { KillTrial } from '../lib/report.ts';
import { type Ctx, create, fileSha } from './context.ts';

export async function killCreate(ctx: Ctx): Promise<KillTrial[]> {
  const { trials, rnd } = ctx.opts;
  const out: KillTrial[] = [];
  for (let t = 1; t <= trials; t++) {
    const dir = await fresh('kill-create');
    const cache = join(dir, 'cache');
    const outDir = join(dir, 'out');
    await mkdir(outDir);
    const output = join(outDir, 'rel.tar');
    const killAtMs = Math.round(rnd() * ctx.createMs * 1.1);
    const first = await create(ctx, output, { cache, killAtMs, plainHttp: ctx.src.host });
    // A kill after the final rename finds the complete bundle in place: fine. Anything else there is not.
    const atOutput = first.killed && existsSync(output) && (await fileSha(output)) !== ctx.cleanSha;
    const completeAtKill = first.killed && existsSync(output) && !atOutput;
    const leftovers = first.killed ? (await readdir(outDir)).filter((n) => n !== 'rel.tar') : [];
    if (first.killed) await rm(output, { force: true });
    const again = first.killed ? await create(ctx, output, { cache, plainHttp: ctx.src.host }) : first;
    const same = again.code === 0 && existsSync(output) && (await fileSha(output)) === ctx.cleanSha;
    const ok = !atOutput && same;
    const trial: KillTrial = {
      trial: t,
      killAtMs,
      killed: first.killed,
      rerunExit: again.code,
      rerunMs: Math.round(again.ms),
      ok,
      leftovers,
    };
    if (completeAtKill) trial.completeAtKill = true;
    if (!ok)
      trial.problem = atOutput
        ? 'a partial or wrong file was left at the output path after the kill'
        : again.code !== 0
          ? lastError(again)
          : 'the re-run bundle differs from the clean build';
    log(
      `kill create ${t}/${trials}: at ${killAtMs} ms (${first.killed ? 'killed' : 'had finished'}), output path ${atOutput ? 'NOT EMPTY' : 'empty'}, leftovers ${leftovers.length}, re-run exit ${again.code}, ${same ? 'byte-identical' : 'DIFFERENT'}`,
    );
    await rm(dir, { recursive: true, force: true });
    out.push(trial);
  }
  return out;
}
