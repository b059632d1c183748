/**
 * scripts/bench: Lading against skopeo/tar/openssl, and against the limits of this machine.
 * Run through the bash wrapper (`scripts/bench --help`), which owns the work folder and its cleanup.
 * Each experiment is a file in experiments/ (build, rebuild, push, re-push, verify, limits, guards,
 * and the --profile and --double runs); the rows and documents are made in lib/report.ts.
 */
import { copyFile, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { type RegistryServer, startRegistry } from '@lading/testkit';
import { seed } from './experiments/bench.ts';
import { build } from './experiments/build.ts';
import { runDoubled } from './experiments/double.ts';
import { guards } from './experiments/guards.ts';
import { runLarge } from './experiments/large.ts';
import { limits } from './experiments/limits.ts';
import { profileRun } from './experiments/profile.ts';
import { push } from './experiments/push.ts';
import { prepare } from './experiments/setup.ts';
import { verify } from './experiments/verify.ts';
import {
  fmtBytes,
  fmtSec,
  fresh,
  log,
  type Machine,
  machine,
  parseArgs,
  ROOT,
  workDir,
  writeDocs,
  writeJson,
} from './lib/common.ts';
import { makeCorpus } from './lib/corpus.ts';
import type { ProfileSummary } from './lib/profile.ts';
import {
  type DoubleResult,
  fromJson,
  markdown,
  type RunSettings,
  Runs,
  report,
  summaryTable,
} from './lib/report.ts';

const HELP = `scripts/bench [--scale N] [--reps N] [--double] [--smoke] [--json FILE] [--docs] [--concurrency N]
  --scale N        corpus size factor (1 = about 2 GiB, 24 images; 0.1 for a quick run)
  --reps N         repetitions per row, the median is reported (default 3)
  --double         also run Lading's build/push/verify once on a corpus of twice the scale (peak RSS)
  --smoke          tiny corpus (4 images, scale 0.01), 1 repetition, no docs
  --json FILE      where the results go (default bench-out/results/bench-<scale>.json)
  --docs           also write docs/benchmarks.json and docs/benchmarks.md
  --concurrency N  parallel curl transfers for the raw limits (default: 8 for pull, 4 for upload,
                   the defaults of lading-build create and lading-load push)
  --profile        after the timed runs, run Lading's create, push and verify once more under
                   node --cpu-prof (profiles in bench-out/profiles/) and summarise where the time goes
  --peer-only      skip Lading's side (for working on the script itself)
  --from-json FILE measure nothing: write docs/benchmarks.{md,json} from an earlier run's results
  --large N        only Lading's build, push and verify, once, on a corpus of scale N (10: about
                   20 GB; needs ~2.3x the corpus free on disk, the corpus is deleted once seeded),
                   added to an earlier full run's results (--base FILE, default docs/benchmarks.json)
                   and compared with its rows: time linear, memory flat? With --docs, rewrites the docs`;

const args = parseArgs(process.argv.slice(2), {
  scale: 'string',
  reps: 'string',
  double: 'boolean',
  smoke: 'boolean',
  json: 'string',
  docs: 'boolean',
  concurrency: 'string',
  help: 'boolean',
  'peer-only': 'boolean',
  profile: 'boolean',
  'from-json': 'string',
  large: 'string',
  base: 'string',
});
const peerOnly = args['peer-only'] === true;
if (args.help) {
  console.log(HELP);
  process.exit(0);
}
const smoke = args.smoke === true;
const scale = Number(args.scale ?? (smoke ? 0.01 : 1));
const reps = Number(args.reps ?? (smoke ? 1 : 3));
const conc = Number(args.concurrency ?? 4);
const pullConc = Number(args.concurrency ?? 8);
const maxImages = smoke ? 4 : undefined;
const jsonOut =
  (args.json as string | undefined) ??
  join(ROOT, 'bench-out', 'results', `bench-${smoke ? 'smoke' : scale}.json`);
const command = `scripts/bench ${process.argv.slice(2).join(' ')}`.trim();

const runs = new Runs();
const settings: RunSettings = { command, reps, concurrency: conc, pullConcurrency: pullConc };

async function main(): Promise<void> {
  const work = workDir();
  const tmp = await fresh('meta');
  const m: Machine = await machine(work);
  log(`machine: ${m.cpu}, ${m.nproc} cpus, ${m.memTotalGiB} GiB (available ${m.memAvailableGiB} GiB)`);

  // 1. corpus
  const corpus = await makeCorpus({
    scale,
    ...(maxImages ? { maxImages } : {}),
    cacheDir: join(ROOT, 'bench-out', 'corpus'),
    log,
  });
  log(
    `corpus: ${corpus.images.length} images, ${corpus.layerCount} layers, ${fmtBytes(corpus.totalBytes)}, shared layers ${fmtBytes(corpus.sharedLayerBytes)} (${Math.round((100 * corpus.sharedLayerBytes) / corpus.totalBytes)} %)`,
  );

  const src = await startRegistry({ mode: 'http' });
  const registries: RegistryServer[] = [src];
  try {
    const seedMs = await seed(corpus, src, tmp);
    log(`corpus: pushed into ${src.host} with skopeo in ${fmtSec(seedMs)}`);
    const b = await prepare({ runs, tmp, corpus, src, registries, conc, pullConc });

    for (let rep = 1; rep <= reps; rep++) {
      const ladingFirst = rep % 2 === 1;
      log(`repetition ${rep}/${reps} (${ladingFirst ? 'Lading' : 'peer'} first)`);
      await build(b, rep, ladingFirst, peerOnly);
      if (peerOnly) {
        await copyFile(b.peerTar, b.bundle);
        b.bundleBytes = (await stat(b.bundle)).size;
      }
      await push(b, rep, ladingFirst, peerOnly);
      if (!peerOnly) await verify(b, rep, ladingFirst);
      await limits(b, rep);
      if (!peerOnly) await guards(b, rep);
      // Results so far (a run stopped later still leaves these; --from-json makes the docs from them).
      const partial = report(
        runs,
        settings,
        m,
        corpus,
        b.bundleBytes,
        (await stat(b.peerTar)).size,
        seedMs,
        undefined,
      );
      partial.ladingJson = runs.ladingJson;
      await writeJson(jsonOut.replace(/\.json$/, '.partial.json'), partial);
    }

    const peerBytes = (await stat(b.peerTar)).size;
    let profiles: Record<string, ProfileSummary[]> | undefined;
    if (args.profile) profiles = await profileRun(b);
    let doubled: DoubleResult | undefined;
    if (args.double) {
      await rm(b.peerTar, { force: true });
      doubled = await runDoubled(scale, tmp, b.key, b.pub);
    }
    const result = report(runs, settings, m, corpus, b.bundleBytes, peerBytes, seedMs, doubled);
    result.loadavgEnd = (await readFile('/proc/loadavg', 'utf8').catch(() => '')).trim();
    result.ladingJson = runs.ladingJson;
    if (profiles) result.profiles = profiles;
    await writeJson(jsonOut, result);
    log(`results: ${jsonOut}`);
    if (args.docs) {
      await writeDocs('benchmarks', result, markdown(result));
      log('wrote docs/benchmarks.md and docs/benchmarks.json');
    }
    console.log(summaryTable(result));
  } finally {
    for (const r of registries) await r.stop().catch(() => {});
  }
}

async function large(n: number): Promise<void> {
  const result = await runLarge(n, String(args.base ?? join(ROOT, 'docs', 'benchmarks.json')), command);
  const out =
    (args.json as string | undefined) ?? join(ROOT, 'bench-out', 'results', `bench-large-${n}.json`);
  await writeJson(out, result);
  log(`results: ${out}`);
  if (args.docs) {
    await writeDocs('benchmarks', result, markdown(result));
    log('wrote docs/benchmarks.md and docs/benchmarks.json');
  }
}

(args['from-json']
  ? fromJson(String(args['from-json']))
  : args.large
    ? large(Number(args.large))
    : main()
).catch((err) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exit(1);
});
