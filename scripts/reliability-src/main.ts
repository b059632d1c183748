/**
 * scripts/reliability: kill -9 during push and create, a fault-injecting proxy, a tamper matrix and an
 * archive attack corpus, the bundle's own trust chain and upstream signatures — each checked against
 * what a clean run gives. Run through the bash wrapper. One file per experiment in experiments/
 * (context.ts: what they share); the report is lib/report.ts.
 */
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  fresh,
  log,
  machine,
  parseArgs,
  ROOT,
  workDir,
  writeDocs,
  writeJson,
} from '../bench-src/lib/common.ts';
import { type Attack, attacks, runBundleAttacks } from './experiments/bundle-attacks.ts';
import { runChartAttacks } from './experiments/chart-attacks.ts';
import { refusalCheck } from './experiments/check.ts';
import { type Ctx, type Options, registry, stopRegistry, stops } from './experiments/context.ts';
import { faults } from './experiments/faults.ts';
import { killCreate } from './experiments/kill-create.ts';
import { killPush } from './experiments/kill-push.ts';
import { provenanceSection } from './experiments/provenance.ts';
import { setup } from './experiments/setup.ts';
import { type Mutation, runTamper, tamperCases } from './experiments/tamper.ts';
import { trustSection } from './experiments/trust.ts';
import { prng } from './lib/fault-proxy.ts';
import { type Case, fromJson, markdown, type Result, summarize } from './lib/report.ts';

const HELP = `scripts/reliability [--trials N] [--fault-runs N] [--rates 0,0.05,0.2] [--seed N] [--smoke] [--docs] [--json FILE]
  --trials N       kill -9 trials for push and for create (default 20)
  --fault-runs N   runs per fault rate and command (default 3)
  --rates LIST     fault rates of the proxy (default 0,0.05,0.2)
  --seed N         seed of the kill points and of the proxy's faults (default 1)
  --smoke          2 trials, 1 fault run at rate 0.2, a few tamper and attack cases, no docs
  --docs           also write docs/reliability.md and docs/reliability.json
  --json FILE      where the results go (default bench-out/results/reliability[-smoke].json)
  --only LIST      run only these sections: kill-push,kill-create,faults,tamper,trust,provenance (tamper includes the attacks)
  --from-json FILE run nothing: write docs/reliability.{md,json} from an earlier run's results`;

const args = parseArgs(process.argv.slice(2), {
  trials: 'string',
  'fault-runs': 'string',
  rates: 'string',
  seed: 'string',
  smoke: 'boolean',
  docs: 'boolean',
  json: 'string',
  help: 'boolean',
  'from-json': 'string',
  only: 'string',
});
const only = args.only ? new Set(String(args.only).split(',')) : undefined;
const wants = (section: string): boolean => !only || only.has(section);
if (args.help) {
  console.log(HELP);
  process.exit(0);
}
const smoke = args.smoke === true;
const trials = Number(args.trials ?? (smoke ? 2 : 20));
const faultRuns = Number(args['fault-runs'] ?? (smoke ? 1 : 3));
const rates = String(args.rates ?? (smoke ? '0.2' : '0,0.05,0.2'))
  .split(',')
  .map(Number);
const seed = Number(args.seed ?? 1);
const jsonOut =
  (args.json as string | undefined) ??
  join(ROOT, 'bench-out', 'results', `reliability${smoke ? '-smoke' : ''}.json`);
const command = `scripts/reliability ${process.argv.slice(2).join(' ')}`.trim();
const rnd = prng(seed);

const opts: Options = { smoke, trials, faultRuns, rates, seed, rnd };

/** The tamper matrix and both attack corpora (the `tamper` section): one registry for verify-and-push refusals. */
async function runCases(
  ctx: Ctx,
  muts: Mutation[],
  attackList: Attack[],
): Promise<{ tamper: Case[]; bundleAttacks: Case[]; chartAttacks: Case[] }> {
  const dir = await fresh('tamper');
  const reg = await registry();
  const outside = join(workDir(), 'outside');
  await mkdir(outside, { recursive: true });
  const check = refusalCheck(reg);
  const tamper = await runTamper(ctx, check, muts, dir);
  const bundleAttacks = await runBundleAttacks(ctx, check, attackList, dir, outside);
  await stopRegistry(reg);
  const chartAttacks = await runChartAttacks(attackList, dir, outside, smoke);
  return { tamper, bundleAttacks, chartAttacks };
}

async function main(): Promise<void> {
  const m = await machine(workDir());
  const ctx = await setup(opts);
  const killP = wants('kill-push') ? await killPush(ctx) : [];
  const killC = wants('kill-create') ? await killCreate(ctx) : [];
  const f = wants('faults') ? await faults(ctx) : [];
  let muts = await tamperCases(ctx);
  let atts = attacks();
  if (smoke) {
    const keep = new Set(['flip:layer blob', 'key:wrong']);
    muts = muts.filter((x) => keep.has(x.id));
    atts = atts.filter((a) => a.id === 'traversal');
  }
  const cases = wants('tamper')
    ? await runCases(ctx, muts, atts)
    : { tamper: [] as Case[], bundleAttacks: [] as Case[], chartAttacks: [] as Case[] };
  const all = [...cases.tamper, ...cases.bundleAttacks, ...cases.chartAttacks];
  const trust = wants('trust') ? await trustSection(ctx) : [];
  // last: it adds .sig tags to the source registry, which create would then carry
  const prov = wants('provenance') ? await provenanceSection(ctx) : [];
  const result: Result = {
    generated: new Date().toISOString(),
    command,
    machine: m,
    setup: {
      images: ctx.images.length,
      bundleBytes: (await stat(ctx.clean)).size,
      tags: Object.keys(ctx.cleanState).length,
      cleanCreateMs: Math.round(ctx.createMs),
      cleanPushMs: Math.round(ctx.pushMs),
    },
    killPush: killP,
    killCreate: killC,
    faults: f,
    ...cases,
    provenance: prov,
    trust,
    summary: {},
  };
  result.summary = summarize(result, rates);
  await writeJson(jsonOut, result);
  log(`results: ${jsonOut}`);
  if (args.docs) {
    await writeDocs('reliability', result, markdown(result));
    log('wrote docs/reliability.md and docs/reliability.json');
  }
  for (const [k, v] of Object.entries(result.summary)) console.log(`${k}: ${v}`);
  console.log(`${all.filter((c) => c.ok).length}/${all.length} tamper/attack cases as expected`);
}

(args['from-json'] ? fromJson(String(args['from-json'])) : main())
  .catch((err) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    process.exitCode = 1;
  })
  .finally(async () => {
    for (const s of stops) await s().catch(() => {});
  });
