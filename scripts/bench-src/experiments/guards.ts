/**
 * guards: what Lading's refusals of hostile input cost, as figures (issue 14: timing belongs in
 * the bench, the unit tests assert only the refusal). Each is timed inside its own process
 * (experiments/guard-probe.ts, against @lading/core as built), without Node's start-up:
 * - hostile references (reference.test.ts's inputs, 50,000 characters each) against ordinary
 *   references of the same total bytes: a ratio near 1 is a parser linear in its input;
 * - chart gzip bombs (charts-archive.test.ts's two) refused by readChartArchive, against
 *   `gzip -dc` of the same archive to the end (what reading it without a limit costs at least).
 */
import { mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { NODE } from '../lib/common.ts';
import { measure, type Step } from '../lib/run.ts';
import type { Bench } from './bench.ts';

const PROBE = join(import.meta.dirname, 'guard-probe.ts');
/** Each hostile reference is parsed this many times (4 inputs: 4 × N parses, 4.4 MB at 25). */
const REFERENCE_ROUNDS = 25;

/** The chart bombs: id, what, the refusal's reason, and how the archive is made (sh, $1 = folder). */
export const CHART_BOMBS = [
  {
    id: 'guard.bomb-file',
    title: 'refuse a chart gzip bomb: one 150 MiB file of zeros',
    reason: 'entry-too-large',
    files: [['zeros', '150M']],
  },
  {
    id: 'guard.bomb-total',
    title: 'refuse a chart gzip bomb: 6 files of 19 MiB, each under the per-file limit, over the total',
    reason: 'total-too-large',
    files: Array.from({ length: 6 }, (_, i) => [`f${i}`, '19M']),
  },
] as const;

export const GUARD_REFS = {
  id: 'guard.refs',
  title: `parse ${REFERENCE_ROUNDS * 4} hostile references (about 50,000 characters each), all refused`,
  baseline: 'parse ordinary references of the same total bytes',
};

/** Every guard row of the report: its samples are `ID.lading` (the guard) and `ID.base` (the baseline). */
export const GUARDS: readonly { id: string; title: string; baseline: string }[] = [
  GUARD_REFS,
  ...CHART_BOMBS.map((b) => ({ id: b.id, title: b.title, baseline: '`gzip -dc` of the archive to its end' })),
];

export async function guards(b: Bench, rep: number): Promise<void> {
  const { tmp, runs } = b;
  const refsOut = join(tmp, 'guard-refs.json');
  const r = await measure(NODE, [PROBE, 'refs', String(REFERENCE_ROUNDS)], {
    tmp,
    stdoutFile: refsOut,
    okCodes: [0, 3],
    label: 'guard-probe refs',
  });
  const refs = JSON.parse(await readFile(refsOut, 'utf8')) as { hostileMs: number; ordinaryMs: number };
  runs.record(`${GUARD_REFS.id}.lading`, rep, [inside(r, refs.hostileMs, 'parse hostile references')]);
  runs.record(`${GUARD_REFS.id}.base`, rep, [inside(r, refs.ordinaryMs, 'parse ordinary references')]);

  const dir = await chartBombs(b);
  for (const bomb of CHART_BOMBS) {
    const file = join(dir, `${bomb.id}.tgz`);
    const out = join(tmp, `${bomb.id}.json`);
    const s = await measure(NODE, [PROBE, 'chart', file, bomb.reason], {
      tmp,
      stdoutFile: out,
      okCodes: [0, 3],
      label: 'guard-probe chart',
    });
    const { ms } = JSON.parse(await readFile(out, 'utf8')) as { ms: number };
    runs.record(`${bomb.id}.lading`, rep, [inside(s, ms, 'readChartArchive (refused)')]);
    runs.record(`${bomb.id}.base`, rep, [
      await measure('sh', ['-c', 'gzip -dc "$1" >/dev/null', 'gzip', file], { tmp, label: 'gzip -dc' }),
    ]);
  }
}

/** The probe's process (peak RSS, exit code) with the time it measured inside. */
function inside(step: Step, wallMs: number, label: string): Step {
  return { label, wallMs, maxRssKb: step.maxRssKb, exitCode: step.exitCode };
}

/** The bombs, made once per run with GNU tar and gzip from sparse files (no disk for the zeros). */
async function chartBombs(b: Bench): Promise<string> {
  const dir = join(b.out, 'guards');
  if (await stat(join(dir, `${CHART_BOMBS.at(-1)!.id}.tgz`)).catch(() => undefined)) return dir;
  await mkdir(join(dir, 'src', 'evil'), { recursive: true });
  for (const bomb of CHART_BOMBS) {
    const script = [
      'set -e',
      'cd "$1/src"',
      "printf 'apiVersion: v2\\nname: evil\\nversion: 1.0.0\\n' > evil/Chart.yaml",
      ...bomb.files.map(([name, size]) => `truncate -s ${size} evil/${name}`),
      `tar -czf "$1/${bomb.id}.tgz" evil/Chart.yaml ${bomb.files.map(([name]) => `evil/${name}`).join(' ')}`,
      `rm -f ${bomb.files.map(([name]) => `evil/${name}`).join(' ')}`,
    ].join('\n');
    await measure('sh', ['-c', script, 'make-bomb', dir], { tmp: b.tmp, label: `make ${bomb.id}` });
  }
  return dir;
}
