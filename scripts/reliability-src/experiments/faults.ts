/**
 * push and create through a fault-injecting proxy (resets, 5xx, stalls, short bodies at a rate):
 * each must complete with the clean run's content.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fresh, log } from '../../bench-src/lib/common.ts';
import { type FaultProxy, startFaultProxy } from '../lib/fault-proxy.ts';
import { lastError, type Ran } from '../lib/proc.ts';
import { registryState, sameState, stateDiff } from '../lib/registry-state.ts';
import type { FaultRun } from '../lib/report.ts';
import { memberName, parseTar } from '../lib/tar.ts';
import { type Ctx, create, push, registry, sha256, stopRegistry } from './context.ts';

/** One fault run's record (and its log line): what was injected, and why it failed if it did. */
function faultRun(
  at: Pick<FaultRun, 'command' | 'rate' | 'run'>,
  r: Ran,
  proxy: FaultProxy,
  completed: boolean,
  timeoutMs: number,
  mismatch: () => string,
): FaultRun {
  const { requests, ...faults } = proxy.stats;
  const fr: FaultRun = { ...at, exit: r.code, ms: Math.round(r.ms), completed, requests, faults };
  if (!completed) {
    fr.problem = r.timedOut ? `timed out after ${timeoutMs} ms` : r.code !== 0 ? lastError(r) : mismatch();
    fr.faultEvents = proxy.events.map((e) => `${e.kind} ${e.method} ${e.path}`).reverse();
  }
  log(
    `faults ${at.command} rate ${at.rate} run ${at.run}: exit ${r.code} in ${fr.ms} ms, ${requests} requests, faults ${JSON.stringify(faults)}${completed ? '' : ` PROBLEM ${fr.problem}`}`,
  );
  return fr;
}

async function bundleBlobs(file: string): Promise<string> {
  const names = parseTar(await readFile(file))
    .map(memberName)
    .filter((n) => n.startsWith('blobs/'))
    .sort();
  return sha256(names.join('\n'));
}

export async function faults(ctx: Ctx): Promise<FaultRun[]> {
  const { smoke, rates, faultRuns, seed } = ctx.opts;
  const out: FaultRun[] = [];
  const cleanBlobs = await bundleBlobs(ctx.clean);
  const timeoutMs = smoke ? 120_000 : 300_000;
  for (const rate of rates) {
    for (let i = 1; i <= faultRuns; i++) {
      // push through the proxy into a fresh registry
      {
        const reg = await registry();
        const proxy = await startFaultProxy({ upstream: reg.url, rate, seed: seed * 1000 + i + rate * 100 });
        const r = await push(ctx.clean, proxy.host, ctx.pub, { timeoutMs });
        await proxy.stop();
        const state = await registryState(reg.url);
        await stopRegistry(reg);
        const completed = r.code === 0 && sameState(ctx.cleanState, state);
        out.push(
          faultRun({ command: 'push', rate, run: i }, r, proxy, completed, timeoutMs, () =>
            stateDiff(ctx.cleanState, state),
          ),
        );
      }
      // create with the source registry behind the proxy
      {
        const proxy = await startFaultProxy({
          upstream: ctx.src.url,
          rate,
          seed: seed * 2000 + i + rate * 100,
        });
        const dir = await fresh('fault-create');
        const spec = join(ctx.specDir, `lading-proxy-${proxy.host.split(':')[1]}.yaml`);
        await writeFile(spec, (await readFile(ctx.spec, 'utf8')).replaceAll(ctx.src.host, proxy.host));
        const output = join(dir, 'rel.tar');
        const r = await create({ spec, key: ctx.key }, output, { plainHttp: proxy.host, timeoutMs });
        await proxy.stop();
        const completed = r.code === 0 && (await bundleBlobs(output)) === cleanBlobs;
        out.push(
          faultRun(
            { command: 'create', rate, run: i },
            r,
            proxy,
            completed,
            timeoutMs,
            () => 'blobs differ from the clean bundle',
          ),
        );
        await rm(dir, { recursive: true, force: true });
        await rm(spec, { force: true });
      }
    }
  }
  return out;
}
