import { HelmFailedError, runHelm, shellLine } from './helm.ts';
import type { InstallPlan, PlannedRelease } from './plan.ts';

export interface ReleaseResult {
  name: string;
  namespace?: string;
  chart: string;
  version: string;
  command: string;
  status: 'installed';
  /** helm's stdout (its summary of the release). */
  output: string;
}

/**
 * Run `helm upgrade --install` for every release of the plan, in order. The first failure stops
 * the run with HelmFailedError (exit 4) naming the release and carrying helm's stderr.
 */
export async function runInstall(
  plan: InstallPlan,
  helm: string,
  opts: { signal?: AbortSignal; onRelease?: (r: PlannedRelease, phase: 'start' | 'done') => void } = {},
): Promise<ReleaseResult[]> {
  const done: ReleaseResult[] = [];
  for (const r of plan.releases) {
    opts.onRelease?.(r, 'start');
    const res = await runHelm(helm, r.args, opts.signal ? { signal: opts.signal } : {});
    if (res.status !== 0) {
      throw new HelmFailedError(
        r.name,
        res.status,
        res.stderr || res.stdout,
        done.map((d) => d.name),
      );
    }
    done.push({
      name: r.name,
      ...(r.namespace ? { namespace: r.namespace } : {}),
      chart: r.chart,
      version: r.version,
      command: shellLine(helm, r.args),
      status: 'installed',
      output: res.stdout.trim(),
    });
    opts.onRelease?.(r, 'done');
  }
  return done;
}
