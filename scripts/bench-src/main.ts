/**
 * scripts/bench: Lading against skopeo/tar/openssl, and against the limits of this machine.
 * Run through the bash wrapper (`scripts/bench --help`), which owns the work folder and its cleanup.
 */
import { copyFile, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type RegistryServer, startRegistry } from '@lading/testkit';
import {
  BUILD_BIN,
  fmtBytes,
  fmtSec,
  fresh,
  keptNotes,
  LOAD_BIN,
  ladingEnv,
  log,
  type Machine,
  machine,
  NODE,
  parseArgs,
  ROOT,
  SKOPEO,
  specYaml,
  workDir,
  writeJson,
} from './lib/common.ts';
import { type Corpus, makeCorpus } from './lib/corpus.ts';
import { type ProfileSummary, summariseDir } from './lib/profile.ts';
import { combine, duBytes, freeBytes, measure, median, type Step } from './lib/run.ts';

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
  --from-json FILE measure nothing: write docs/benchmarks.{md,json} from an earlier run's results`;

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

interface Sample {
  rep: number;
  wallMs: number;
  maxRssKb: number;
  steps: Step[];
  extraDiskBytes?: number;
}

interface Side {
  tool: string;
  samples: Sample[];
  medianMs: number;
  maxRssKb: number;
  /** Bytes moved per second at the median time (bundle or corpus bytes). */
  mibPerSec: number;
  extraDiskBytes?: number;
}

interface Row {
  id: string;
  title: string;
  lading: Side;
  peer?: Side;
  /** lading.median / peer.median */
  ratio?: number;
  limit?: string;
  /** lading.median / limit.median */
  limitRatio?: number;
  targets: { what: string; value: number | undefined; max: number; met: boolean | undefined }[];
}

const steps = new Map<string, Sample[]>();
function record(key: string, rep: number, parts: Step[], extraDiskBytes?: number): Sample {
  const c = combine(key, parts);
  const s: Sample = { rep, wallMs: c.wallMs, maxRssKb: c.maxRssKb, steps: parts };
  if (extraDiskBytes !== undefined) s.extraDiskBytes = extraDiskBytes;
  (steps.get(key) ?? steps.set(key, []).get(key)!).push(s);
  log(
    `  ${key} rep ${rep}: ${fmtSec(c.wallMs)}, peak RSS ${Math.round(c.maxRssKb / 1024)} MiB${extraDiskBytes !== undefined ? `, extra disk ${fmtBytes(extraDiskBytes)}` : ''}`,
  );
  return s;
}

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

    // keys and spec
    const keyDir = await fresh('keys');
    const { env: kenv } = await ladingEnv();
    await measure(NODE, [BUILD_BIN, 'keys', 'generate', '--output', join(keyDir, 'release')], {
      tmp,
      env: kenv,
    });
    const key = join(keyDir, 'release.key');
    const pub = join(keyDir, 'release.pub');
    const refs = corpus.images.map((i) => `${src.host}/${i.name}:${i.tag}`);
    const spec = join(keyDir, 'lading.yaml');
    await writeFile(spec, specYaml('bench', '1.0.0', refs));
    const blobList = join(tmp, 'blobs.txt');
    await writeFile(
      blobList,
      corpus.blobs
        .map(
          (b) =>
            `${b.repo}/${b.mediaType.includes('manifest') || b.mediaType.includes('index') ? 'manifests' : 'blobs'}/${b.digest}\n`,
        )
        .join(''),
    );
    const uploadList = join(tmp, 'upload.txt');
    await writeFile(
      uploadList,
      corpus.blobs
        .map((b) => `${b.digest} ${join(corpus.layoutDir, 'blobs/sha256', b.digest.slice(7))}\n`)
        .join(''),
    );

    const out = await fresh('out');
    const bundle = join(out, 'bench.tar');
    const peerTar = join(out, 'peer.tar');
    const warmBundle = join(out, 'bench-warm.tar');
    let bundleBytes = 0;

    for (let rep = 1; rep <= reps; rep++) {
      const ladingFirst = rep % 2 === 1;
      log(`repetition ${rep}/${reps} (${ladingFirst ? 'Lading' : 'peer'} first)`);

      // build
      const buildL = async (): Promise<void> => {
        await rm(bundle, { force: true });
        const { env, home } = await ladingEnv();
        const s = await measure(
          NODE,
          [
            BUILD_BIN,
            'create',
            '--spec',
            spec,
            '--output',
            bundle,
            '--key',
            key,
            '--json',
            ...ladingSourceFlags(src, home),
          ],
          { tmp, env, label: 'lading-build create', stdoutFile: join(tmp, 'create.json') },
        );
        record('build.lading', rep, [s]);
        ladingJson.create = await readJsonOr(join(tmp, 'create.json'));
        bundleBytes = (await stat(bundle)).size;
        // the same spec again with the warm cache (and the bundle just built beside it)
        const w = await measure(
          NODE,
          [
            BUILD_BIN,
            'create',
            '--spec',
            spec,
            '--output',
            warmBundle,
            '--key',
            key,
            '--json',
            ...ladingSourceFlags(src, home),
          ],
          { tmp, env, label: 'lading-build create (warm)', stdoutFile: join(tmp, 'rebuild.json') },
        );
        record('rebuild.lading', rep, [w]);
        ladingJson.rebuild = await readJsonOr(join(tmp, 'rebuild.json'));
        await rm(warmBundle, { force: true });
        await rm(home, { recursive: true, force: true }); // its content cache
      };
      const buildP = async (): Promise<void> => {
        await rm(peerTar, { force: true });
        const layout = await fresh('peer-layout');
        const parts: Step[] = [];
        for (const img of corpus.images) {
          parts.push(
            await measure(
              SKOPEO,
              [
                '--insecure-policy',
                'copy',
                '--all',
                '--quiet',
                '--src-tls-verify=false',
                `docker://${src.host}/${img.name}:${img.tag}`,
                `oci:${layout}:${img.name}:${img.tag}`,
              ],
              { tmp, env: await peerEnv(), label: 'skopeo copy' },
            ),
          );
        }
        parts.push(await measure('tar', ['-cf', peerTar, '-C', layout, '.'], { tmp, label: 'tar -cf' }));
        await rm(layout, { recursive: true, force: true });
        record('build.peer', rep, parts);
      };
      await pair(ladingFirst, peerOnly ? async () => {} : buildL, buildP);
      if (peerOnly) {
        await copyFile(peerTar, bundle);
        bundleBytes = (await stat(bundle)).size;
      }

      // push (+ no-op re-push of the same bundle into the same registry)
      const pushL = async (): Promise<void> => {
        const dst = await startRegistry({ mode: 'http' });
        registries.push(dst);
        try {
          const { env, home, tmp: ptmp } = await ladingEnv();
          const disk = await diskWatcher([home, ptmp, out], [bundle, peerTar], dst.dataDir, out);
          const s = await measure(
            NODE,
            [LOAD_BIN, 'push', bundle, '--key', pub, '--json', ...ladingTargetFlags(dst)],
            {
              tmp,
              env,
              stdoutFile: join(tmp, 'push.json'),
              label: 'lading-load push',
              sample: disk.sample,
              sampleMs: 200,
            },
          );
          await disk.sample();
          record('push.lading', rep, [s], disk.peak());
          ladingJson.push = await readJsonOr(join(tmp, 'push.json'));
          fsDelta.push(disk.fsPeak());
          // The re-push runs as the same user (same HOME: push keeps a verification stamp in its state dir).
          const n = await measure(NODE, [LOAD_BIN, 'push', bundle, '--key', pub, ...ladingTargetFlags(dst)], {
            tmp,
            env,
            label: 'lading-load push (no-op)',
          });
          record('repush.lading', rep, [n]);
          const { env: env3 } = await ladingEnv();
          const k = await measure(
            NODE,
            [LOAD_BIN, 'push', bundle, '--skip-verify', ...ladingTargetFlags(dst)],
            { tmp, env: env3, label: 'lading-load push --skip-verify (no-op)' },
          );
          record('repushsv.lading', rep, [k]);
        } finally {
          await dst.stop();
          registries.splice(registries.indexOf(dst), 1);
        }
      };
      const pushP = async (): Promise<void> => {
        const dst = await startRegistry({ mode: 'http' });
        registries.push(dst);
        try {
          const dir = await fresh('peer-extract');
          const parts: Step[] = [];
          let peak = 0;
          const sampleDir = async (): Promise<void> => {
            peak = Math.max(peak, await duBytes(dir));
          };
          parts.push(await measure('tar', ['-xf', peerTar, '-C', dir], { tmp, label: 'tar -xf' }));
          await sampleDir();
          for (const img of corpus.images)
            parts.push(await skopeoPush(dir, img, dst.host, tmp, 'skopeo copy'));
          await rm(dir, { recursive: true, force: true });
          record('push.peer', rep, parts, peak);
          if (rep > 1) return; // skopeo's no-op re-push: a reference, measured once
          // skopeo's own no-op re-push (every blob is there): for reference
          const dir2 = await fresh('peer-extract');
          const again: Step[] = [
            await measure('tar', ['-xf', peerTar, '-C', dir2], { tmp, label: 'tar -xf' }),
          ];
          for (const img of corpus.images)
            again.push(await skopeoPush(dir2, img, dst.host, tmp, 'skopeo copy'));
          await rm(dir2, { recursive: true, force: true });
          record('repush.peer', rep, again);
        } finally {
          await dst.stop();
          registries.splice(registries.indexOf(dst), 1);
        }
      };
      await pair(ladingFirst, peerOnly ? async () => {} : pushL, pushP);

      // verify
      const verifyL = async (): Promise<void> => {
        const { env } = await ladingEnv();
        const s = await measure(NODE, [LOAD_BIN, 'verify', bundle, '--key', pub], {
          tmp,
          env,
          label: 'lading-load verify',
        });
        record('verify.lading', rep, [s]);
      };
      const verifyP = async (): Promise<void> => {
        const dir = await fresh('auditor');
        const parts: Step[] = [];
        parts.push(await measure('tar', ['-xf', bundle, '-C', dir], { tmp, label: 'tar -xf' }));
        parts.push(
          await measure(
            'openssl',
            ['dgst', '-sha256', '-verify', pub, '-signature', 'SHA256SUMS.sig', 'SHA256SUMS'],
            { tmp, cwd: dir, label: 'openssl dgst -verify' },
          ),
        );
        parts.push(
          await measure('sha256sum', ['-c', '--quiet', 'SHA256SUMS'], {
            tmp,
            cwd: dir,
            label: 'sha256sum -c',
          }),
        );
        await rm(dir, { recursive: true, force: true });
        record('verify.peer', rep, parts);
      };
      if (!peerOnly) await pair(ladingFirst, verifyL, verifyP);

      // limits
      record('limit.openssl', rep, [
        await measure('openssl', ['dgst', '-sha256', bundle], { tmp, label: 'openssl dgst -sha256' }),
      ]);
      record('limit.startup', rep, [
        await measure(NODE, [LOAD_BIN, '--version'], {
          tmp,
          env: (await ladingEnv()).env,
          label: 'lading-load --version',
        }),
      ]);
      record('limit.sha256sum', rep, [await measure('sha256sum', [bundle], { tmp, label: 'sha256sum' })]);
      record('limit.cat', rep, [
        await measure('sh', ['-c', 'cat "$1" >/dev/null', 'cat', bundle], { tmp, label: 'cat > /dev/null' }),
      ]);
      record('limit.copy', rep, [
        await measure(
          'sh',
          ['-c', 'cp "$1" "$2" && sync "$2"; rm -f "$2"', 'cp', bundle, join(out, 'copy.tar')],
          {
            tmp,
            label: 'cp bundle + sync',
          },
        ),
      ]);
      {
        const dir = join(out, 'pulled');
        record('limit.pullwrite', rep, [
          await measure(
            join(ROOT, 'scripts/bench-src/raw-pull-write.sh'),
            [src.url, blobList, String(pullConc), dir],
            { tmp, label: `curl GET ×${pullConc} into files + sync` },
          ),
        ]);
        await rm(dir, { recursive: true, force: true });
      }
      record('limit.pull', rep, [
        await measure(join(ROOT, 'scripts/bench-src/raw-pull.sh'), [src.url, blobList, String(pullConc)], {
          tmp,
          label: `curl GET ×${pullConc}`,
        }),
      ]);
      {
        const dst = await startRegistry({ mode: 'http' });
        registries.push(dst);
        try {
          record('limit.upload', rep, [
            await measure(
              join(ROOT, 'scripts/bench-src/raw-upload.sh'),
              [dst.url, 'limit/upload', uploadList, String(conc)],
              { tmp, label: `curl POST+PUT ×${conc}` },
            ),
          ]);
        } finally {
          await dst.stop();
          registries.splice(registries.indexOf(dst), 1);
        }
      }
      // Results so far (a run stopped later still leaves these; --from-json makes the docs from them).
      const partial = report(m, corpus, bundleBytes, (await stat(peerTar)).size, seedMs, undefined);
      partial.ladingJson = ladingJson;
      await writeJson(jsonOut.replace(/\.json$/, '.partial.json'), partial);
    }

    const peerBytes = (await stat(peerTar)).size;
    let profiles: Record<string, ProfileSummary[]> | undefined;
    if (args.profile) profiles = await profileRun(tmp, spec, key, pub, src, bundle);
    let doubled: DoubleResult | undefined;
    if (args.double) {
      await rm(peerTar, { force: true });
      doubled = await runDoubled(tmp, key, pub);
    }
    const result = report(m, corpus, bundleBytes, peerBytes, seedMs, doubled);
    result.loadavgEnd = (await readFile('/proc/loadavg', 'utf8').catch(() => '')).trim();
    result.ladingJson = ladingJson;
    if (profiles) result.profiles = profiles;
    await writeJson(jsonOut, result);
    log(`results: ${jsonOut}`);
    if (args.docs) {
      await writeJson(join(ROOT, 'docs', 'benchmarks.json'), result);
      await writeFile(
        join(ROOT, 'docs', 'benchmarks.md'),
        markdown(result) + (await keptNotes(join(ROOT, 'docs', 'benchmarks.md'))),
      );
      log('wrote docs/benchmarks.md and docs/benchmarks.json');
    }
    console.log(summaryTable(result));
  } finally {
    for (const r of registries) await r.stop().catch(() => {});
  }
}

const fsDelta: number[] = [];
/** The --json results of Lading's last create and push (their own timings: verifyMs, downloadedBytes…). */
const ladingJson: Record<string, unknown> = {};

async function readJsonOr(file: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as unknown;
  } catch {
    return undefined;
  }
}

async function pair(ladingFirst: boolean, l: () => Promise<void>, p: () => Promise<void>): Promise<void> {
  if (ladingFirst) {
    await l();
    await p();
  } else {
    await p();
    await l();
  }
}

/** Plain HTTP to the source registry, and an empty content cache in the process's own HOME (a cold build). */
function ladingSourceFlags(src: RegistryServer, home: string): string[] {
  return ['--plain-http-host', src.host, '--cache', join(home, 'cache')];
}

function ladingTargetFlags(dst: RegistryServer): string[] {
  return ['--registry', dst.host, '--plain-http'];
}

async function peerEnv(): Promise<NodeJS.ProcessEnv> {
  const { env } = await ladingEnv();
  return env;
}

/**
 * Watches the disk while a push runs: the bytes in the folders the process may write to (its HOME,
 * cache, TMPDIR, the bundle's folder minus the bundle), and the drop of free space on the file system
 * minus what the registry stored meanwhile (noisy when other processes write to the same disk).
 */
async function diskWatcher(
  dirs: string[],
  exclude: string[],
  registryData: string,
  fsPath: string,
): Promise<{ sample(): Promise<void>; peak(): number; fsPeak(): number }> {
  let excludeBytes = 0;
  for (const f of exclude)
    excludeBytes += await stat(f)
      .then((s) => s.size)
      .catch(() => 0);
  const base = (await Promise.all(dirs.map(duBytes))).reduce((a, b) => a + b, 0) - excludeBytes;
  const free0 = await freeBytes(fsPath);
  const reg0 = await duBytes(registryData);
  let peak = 0;
  let fsPeak = 0;
  return {
    async sample() {
      const now = (await Promise.all(dirs.map(duBytes))).reduce((a, b) => a + b, 0) - excludeBytes;
      peak = Math.max(peak, now - base);
      const drop = free0 - (await freeBytes(fsPath));
      const reg = (await duBytes(registryData)) - reg0;
      fsPeak = Math.max(fsPeak, drop - reg);
    },
    peak: () => peak,
    fsPeak: () => fsPeak,
  };
}

/** skopeo copies one image of an OCI layout to a plain-HTTP registry, digests preserved (timed). */
async function skopeoPush(
  layoutDir: string,
  img: { name: string; tag: string },
  host: string,
  tmp: string,
  label: string,
): Promise<Step> {
  return measure(
    SKOPEO,
    [
      '--insecure-policy',
      'copy',
      '--all',
      '--quiet',
      '--preserve-digests',
      '--dest-tls-verify=false',
      `oci:${layoutDir}:${img.name}:${img.tag}`,
      `docker://${host}/${img.name}:${img.tag}`,
    ],
    { tmp, env: await peerEnv(), label },
  );
}

async function seed(corpus: Corpus, reg: RegistryServer, tmp: string): Promise<number> {
  const t0 = Date.now();
  const queue = [...corpus.images];
  const worker = async (): Promise<void> => {
    for (let img = queue.shift(); img; img = queue.shift()) {
      await skopeoPush(corpus.layoutDir, img, reg.host, tmp, 'seed');
    }
  };
  await Promise.all([worker(), worker()]);
  return Date.now() - t0;
}

/** create, push and verify once more under `node --cpu-prof`; summaries of where their CPU time goes. */
async function profileRun(
  tmp: string,
  spec: string,
  key: string,
  pub: string,
  src: RegistryServer,
  bundle: string,
): Promise<Record<string, ProfileSummary[]>> {
  const base = join(ROOT, 'bench-out', 'profiles');
  await rm(base, { recursive: true, force: true });
  const prof = async (name: string): Promise<Record<string, string>> => ({
    NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${join(base, name)}`,
  });
  const out: Record<string, ProfileSummary[]> = {};
  const b2 = join(await fresh('profile'), 'bench.tar');
  const c = await ladingEnv(await prof('create'));
  const sc = await measure(
    NODE,
    [BUILD_BIN, 'create', '--spec', spec, '--output', b2, '--key', key, ...ladingSourceFlags(src, c.home)],
    { tmp, env: c.env, label: 'profile create' },
  );
  await rm(c.home, { recursive: true, force: true });
  await rm(b2, { force: true });
  const dst = await startRegistry({ mode: 'http' });
  let sp: Step;
  try {
    const p = await ladingEnv(await prof('push'));
    sp = await measure(NODE, [LOAD_BIN, 'push', bundle, '--key', pub, ...ladingTargetFlags(dst)], {
      tmp,
      env: p.env,
      label: 'profile push',
    });
  } finally {
    await dst.stop();
  }
  const v = await ladingEnv(await prof('verify'));
  const sv = await measure(NODE, [LOAD_BIN, 'verify', bundle, '--key', pub], {
    tmp,
    env: v.env,
    label: 'profile verify',
  });
  for (const [name, st] of [
    ['create', sc],
    ['push', sp],
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

interface DoubleResult {
  scale: number;
  totalBytes: number;
  bundleBytes: number;
  build: Step;
  push: Step;
  verify: Step;
}

async function runDoubled(tmp: string, key: string, pub: string): Promise<DoubleResult> {
  const corpus2 = await makeCorpus({ scale: scale * 2, cacheDir: join(ROOT, 'bench-out', 'corpus'), log });
  const src = await startRegistry({ mode: 'http' });
  const dst = await startRegistry({ mode: 'http' });
  try {
    await seed(corpus2, src, tmp);
    const dir = await fresh('double');
    const spec = join(dir, 'lading.yaml');
    await writeFile(
      spec,
      specYaml(
        'bench',
        '2.0.0',
        corpus2.images.map((i) => `${src.host}/${i.name}:${i.tag}`),
      ),
    );
    const bundle = join(dir, 'bench2.tar');
    const benv = await ladingEnv();
    const build = await measure(
      NODE,
      [
        BUILD_BIN,
        'create',
        '--spec',
        spec,
        '--output',
        bundle,
        '--key',
        key,
        ...ladingSourceFlags(src, benv.home),
      ],
      { tmp, env: benv.env, label: 'lading-build create (2x)' },
    );
    const push = await measure(NODE, [LOAD_BIN, 'push', bundle, '--key', pub, ...ladingTargetFlags(dst)], {
      tmp,
      env: (await ladingEnv()).env,
      label: 'lading-load push (2x)',
    });
    const verify = await measure(NODE, [LOAD_BIN, 'verify', bundle, '--key', pub], {
      tmp,
      env: (await ladingEnv()).env,
      label: 'lading-load verify (2x)',
    });
    const bundleBytes = (await stat(bundle)).size;
    await rm(dir, { recursive: true, force: true });
    await rm(benv.home, { recursive: true, force: true });
    log(
      `2x corpus: build ${fmtSec(build.wallMs)} ${Math.round(build.maxRssKb / 1024)} MiB, push ${fmtSec(push.wallMs)} ${Math.round(push.maxRssKb / 1024)} MiB, verify ${fmtSec(verify.wallMs)} ${Math.round(verify.maxRssKb / 1024)} MiB`,
    );
    return { scale: scale * 2, totalBytes: corpus2.totalBytes, bundleBytes, build, push, verify };
  } finally {
    await src.stop();
    await dst.stop();
  }
}

// ---------------------------------------------------------------- reporting

interface Result {
  generated: string;
  loadavgEnd?: string;
  ladingJson?: Record<string, unknown>;
  profiles?: Record<string, ProfileSummary[]>;
  command: string;
  machine: Machine;
  corpus: {
    scale: number;
    images: number;
    multiArch: number;
    layers: number;
    blobs: number;
    totalBytes: number;
    sharedLayerBytes: number;
    largestLayer: number;
    seedMs: number;
  };
  bundleBytes: number;
  peerTarBytes: number;
  reps: number;
  concurrency: number;
  pullConcurrency: number;
  rows: Row[];
  limits: { id: string; title: string; medianMs: number; mibPerSec: number; samplesMs: number[] }[];
  disk: { ladingPushExtraBytes: number; ladingPushFsDeltaBytes: number; peerPushExtraBytes: number };
  rss: {
    maxKb: number;
    doubled?: {
      scale: number;
      totalBytes: number;
      buildKb: number;
      pushKb: number;
      verifyKb: number;
      buildMs: number;
      pushMs: number;
      verifyMs: number;
    };
  };
}

function side(key: string, tool: string, bytes: number): Side {
  const samples = steps.get(key) ?? [];
  const med = median(samples.map((s) => s.wallMs));
  const s: Side = {
    tool,
    samples,
    medianMs: med,
    maxRssKb: Math.max(0, ...samples.map((x) => x.maxRssKb)),
    mibPerSec: bytes / 2 ** 20 / (med / 1000),
  };
  const disks = samples.map((x) => x.extraDiskBytes).filter((x): x is number => x !== undefined);
  if (disks.length) s.extraDiskBytes = Math.max(...disks);
  return s;
}

function report(
  m: Machine,
  corpus: Corpus,
  bundleBytes: number,
  peerBytes: number,
  seedMs: number,
  doubled: DoubleResult | undefined,
): Result {
  const limitDefs: [string, string, number][] = [
    ['limit.openssl', '`openssl dgst -sha256` of the bundle (hashing limit)', bundleBytes],
    ['limit.sha256sum', '`sha256sum` of the bundle (coreutils, for reference)', bundleBytes],
    ['limit.cat', '`cat bundle > /dev/null` (read limit)', bundleBytes],
    [
      'limit.pull',
      `raw pull of every blob, ${pullConc} parallel \`curl\` (registry egress)`,
      corpus.totalBytes,
    ],
    [
      'limit.pullwrite',
      `raw pull of every blob into files, ${pullConc} parallel \`curl\`, then \`sync\` (pull-and-write floor)`,
      corpus.totalBytes,
    ],
    ['limit.copy', '`cp` of the bundle, then `sync` (a plain copy of its bytes)', bundleBytes],
    [
      'limit.upload',
      `raw upload of every blob, ${conc} parallel \`curl -T\` (registry ingest)`,
      corpus.totalBytes,
    ],
    [
      'limit.startup',
      'start-up of Node + oclif: `lading-load --version` (a fixed cost in every Lading row)',
      0,
    ],
  ];
  const limits = limitDefs.map(([id, title, bytes]) => {
    const samples = (steps.get(id) ?? []).map((s) => s.wallMs);
    const med = median(samples);
    return { id, title, medianMs: med, mibPerSec: bytes / 2 ** 20 / (med / 1000), samplesMs: samples };
  });
  const lim = (id: string): number => limits.find((l) => l.id === id)!.medianMs;
  const row = (
    id: string,
    title: string,
    ladingTool: string,
    peerTool: string | undefined,
    bytes: number,
    limitId: string | undefined,
    maxRatio: number | undefined,
    maxLimit: number | undefined,
  ): Row => {
    const l = side(`${id}.lading`, ladingTool, bytes);
    const r: Row = { id, title, lading: l, targets: [] };
    if (peerTool) {
      r.peer = side(`${id}.peer`, peerTool, bytes);
      r.ratio = l.medianMs / r.peer.medianMs;
      if (maxRatio !== undefined)
        r.targets.push({
          what: `time vs peer <= ${maxRatio}`,
          value: r.ratio,
          max: maxRatio,
          met: r.ratio <= maxRatio,
        });
    }
    if (limitId) {
      r.limit = limitId;
      r.limitRatio = l.medianMs / lim(limitId);
      if (maxLimit !== undefined)
        r.targets.push({
          what: `time vs ${limitId.replace('limit.', '')} limit <= ${maxLimit}`,
          value: r.limitRatio,
          max: maxLimit,
          met: r.limitRatio <= maxLimit,
        });
    }
    return r;
  };
  const rows = [
    row(
      'build',
      'build',
      'lading-build create',
      'skopeo copy --all → one OCI layout, then tar -cf',
      corpus.totalBytes,
      'limit.pullwrite',
      0.45,
      1.5,
    ),
    row(
      'push',
      'push',
      'lading-load push',
      'tar -xf, then skopeo copy --all per image',
      corpus.totalBytes,
      'limit.upload',
      0.7,
      1.15,
    ),
    row(
      'verify',
      'verify',
      'lading-load verify',
      'tar -xf + openssl dgst -verify + sha256sum -c',
      bundleBytes,
      'limit.openssl',
      0.25,
      0.75,
    ),
    row(
      'repush',
      'no-op re-push',
      'lading-load push (again)',
      'tar -xf, then skopeo copy per image (again)',
      corpus.totalBytes,
      undefined,
      undefined,
      undefined,
    ),
    row(
      'repushsv',
      'no-op re-push, --skip-verify',
      'lading-load push --skip-verify (again)',
      undefined,
      corpus.totalBytes,
      undefined,
      undefined,
      undefined,
    ),
  ];
  const rebuild = row(
    'rebuild',
    'rebuild, warm cache, unchanged sources',
    'lading-build create (again, same cache)',
    undefined,
    bundleBytes,
    'limit.copy',
    undefined,
    1.2,
  );
  const downloaded = (ladingJson.rebuild as { downloadedBytes?: number } | undefined)?.downloadedBytes;
  rebuild.targets.push({
    what: 'no layer crosses the network (bytes downloaded)',
    value: downloaded ?? Number.NaN,
    max: 0,
    met: downloaded === 0,
  });
  rows.splice(1, 0, rebuild);
  const repush = rows[4]!;
  repush.targets.push({
    what: 'no-op re-push < 3 s',
    value: repush.lading.medianMs / 1000,
    max: 3,
    met: repush.lading.medianMs < 3000,
  });
  const push = rows[2]!;
  const extra = push.lading.extraDiskBytes ?? 0;
  push.targets.push({
    what: 'no extra disk during push (< 1 MiB: no copy of the bundle)',
    value: extra,
    max: 2 ** 20,
    met: extra < 2 ** 20,
  });
  const maxKb = Math.max(...rows.map((r) => r.lading.maxRssKb));
  const rss: Result['rss'] = { maxKb };
  if (doubled) {
    rss.doubled = {
      scale: doubled.scale,
      totalBytes: doubled.totalBytes,
      buildKb: doubled.build.maxRssKb,
      pushKb: doubled.push.maxRssKb,
      verifyKb: doubled.verify.maxRssKb,
      buildMs: doubled.build.wallMs,
      pushMs: doubled.push.wallMs,
      verifyMs: doubled.verify.wallMs,
    };
  }
  for (const r of [rows[0]!, rows[2]!, rows[3]!]) {
    r.targets.push({
      what: 'peak RSS <= 200 MB',
      value: (r.lading.maxRssKb * 1024) / 1e6,
      max: 200,
      met: r.lading.maxRssKb * 1024 <= 200e6,
    });
  }
  return {
    generated: new Date().toISOString(),
    command,
    machine: m,
    corpus: {
      scale: corpus.scale,
      images: corpus.images.length,
      multiArch: corpus.images.filter((i) => i.platforms.length > 1).length,
      layers: corpus.layerCount,
      blobs: corpus.blobs.length,
      totalBytes: corpus.totalBytes,
      sharedLayerBytes: corpus.sharedLayerBytes,
      largestLayer: corpus.largestLayer,
      seedMs,
    },
    bundleBytes,
    peerTarBytes: peerBytes,
    reps,
    concurrency: conc,
    pullConcurrency: pullConc,
    rows,
    limits,
    disk: {
      ladingPushExtraBytes: extra,
      ladingPushFsDeltaBytes: Math.max(0, ...fsDelta),
      peerPushExtraBytes: push.peer?.extraDiskBytes ?? 0,
    },
    rss,
  };
}

const mib = (kb: number): string => `${Math.round(kb / 1024)} MiB`;
const ratio = (x: number | undefined): string =>
  x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(2);

function summaryTable(r: Result): string {
  const lines = [
    '| row | Lading | peer | Lading/peer | Lading MiB/s | limit ratio | Lading peak RSS | peer peak RSS |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const row of r.rows) {
    lines.push(
      `| ${row.title} | ${fmtSec(row.lading.medianMs)} | ${row.peer ? fmtSec(row.peer.medianMs) : '–'} | ${ratio(row.ratio)} | ${row.lading.mibPerSec.toFixed(0)} | ${row.limit ? `${ratio(row.limitRatio)} × ${row.limit.replace('limit.', '')}` : '–'} | ${mib(row.lading.maxRssKb)} | ${row.peer ? mib(row.peer.maxRssKb) : '–'} |`,
    );
  }
  lines.push('', '| limit | median | MiB/s |', '| --- | ---: | ---: |');
  for (const l of r.limits)
    lines.push(`| ${l.title} | ${fmtSec(l.medianMs)} | ${l.mibPerSec > 0 ? l.mibPerSec.toFixed(0) : '–'} |`);
  return lines.join('\n');
}

function profilesMd(r: Result): string {
  if (!r.profiles) return '';
  const parts = [
    "## Where Lading's time goes",
    '',
    'One more run of each command under `node --cpu-prof` (after the timed runs; profiles in `bench-out/profiles/`).',
    'Self time by area, then the functions with the most self time ("idle" is the event loop waiting for I/O).',
    '',
  ];
  for (const [cmd, sums] of Object.entries(r.profiles)) {
    for (const p of sums) {
      parts.push(`### ${cmd} (${fmtSec(p.totalMs)} of samples)`, '');
      parts.push(
        p.areas
          .filter((a) => a.pct >= 1)
          .map((a) => `${a.area} ${a.pct} %`)
          .join(' · '),
        '',
      );
      parts.push(
        '| function | where | self | % | for (nearest Lading frame) |',
        '| --- | --- | ---: | ---: | --- |',
      );
      for (const f of p.top.slice(0, 10))
        parts.push(
          `| \`${f.fn}\` | ${f.where} | ${fmtSec(f.ms)} | ${f.pct} | ${(f.callers ?? []).join('<br>')} |`,
        );
      parts.push('');
    }
  }
  return parts.join('\n') + '\n';
}

function markdown(r: Result): string {
  const targets: string[] = [];
  for (const row of r.rows) {
    for (const t of row.targets) {
      const v =
        t.value === undefined ? '–' : t.what.includes('extra disk') ? fmtBytes(t.value) : t.value.toFixed(2);
      targets.push(
        `| ${row.title} | ${t.what} | ${v} | ${t.met === undefined ? '–' : t.met ? 'met' : '**missed**'} |`,
      );
    }
  }
  if (r.rss.doubled) {
    const d = r.rss.doubled;
    const one = Object.fromEntries(r.rows.map((row) => [row.id, row.lading.maxRssKb]));
    for (const [id, kb] of [
      ['build', d.buildKb],
      ['push', d.pushKb],
      ['verify', d.verifyKb],
    ] as const) {
      const before = one[id] ?? 0;
      const growth = before ? (kb - before) / before : Number.NaN;
      targets.push(
        `| ${id} | peak RSS unchanged (within 10 %) when the corpus doubles to ${fmtBytes(d.totalBytes)} | ${mib(before)} → ${mib(kb)} (${growth >= 0 ? '+' : ''}${(growth * 100).toFixed(0)} %) | ${growth <= 0.1 ? 'met' : '**missed**'} |`,
      );
    }
  }
  const c = r.corpus;
  return `# Benchmarks

Generated by \`${r.command}\` on ${r.generated.slice(0, 16).replace('T', ' ')} UTC. Every figure below comes
from that one run; rerun it to check them (see "Reproduce").

## Machine

* CPU: ${r.machine.cpu}, ${r.machine.nproc} cores (\`nproc\`), flags ${r.machine.cpuFlags.join(', ')}
* Memory: ${r.machine.memTotalGiB} GiB total, ${r.machine.memAvailableGiB} GiB available at the start
* ${r.machine.os}, kernel ${r.machine.kernel}; work folder on \`${r.machine.fs}\`
* Load average (\`/proc/loadavg\`) at the start: \`${r.machine.loadavg}\`, at the end: \`${r.loadavgEnd ?? '?'}\`
* ${Object.entries(r.machine.versions)
    .map(([k, v]) => `${k}: ${v}`)
    .join(' · ')}

\`\`\`
${r.machine.free}
\`\`\`

## Corpus

${c.images} images (${c.multiArch} of them multi-arch OCI indexes, linux/amd64 + linux/arm64/v8), ${c.layers} layers,
${c.blobs} blobs, **${fmtBytes(c.totalBytes)}** in all; ${fmtBytes(c.sharedLayerBytes)}
(${Math.round((100 * c.sharedLayerBytes) / c.totalBytes)} %) in layers shared between images; largest layer
${fmtBytes(c.largestLayer)}. Layers are tars of deterministic pseudo-random bytes, gzip'd in store mode
(incompressible, like compressed content; nobody decompresses a layer here). The corpus is generated once
into \`bench-out/corpus/\` and pushed with skopeo into a Distribution registry on 127.0.0.1
(${fmtSec(c.seedMs)}); every push row pushes into a fresh registry on 127.0.0.1. Lading bundle:
${fmtBytes(r.bundleBytes)}; the peer's tar: ${fmtBytes(r.peerTarBytes)}.

Each row ran ${r.reps} time(s), alternating which side goes first; the table gives the median wall time,
peak RSS is the largest of any process of that side over all repetitions (\`/usr/bin/time -v\`).
Parallel curl uses ${r.pullConcurrency} transfers for the pull and ${r.concurrency} for the upload, the defaults of
\`lading-build create\` and \`lading-load push\`.

## Results

${summaryTable(r)}

Extra disk during push: Lading ${fmtBytes(r.disk.ladingPushExtraBytes)} in the folders it may write to
(HOME, cache, TMPDIR, the bundle's folder), free-space drop beyond what the registry stored
${fmtBytes(r.disk.ladingPushFsDeltaBytes)} (noisy: other processes share the disk); the peer extracts
the whole tar first: ${fmtBytes(r.disk.peerPushExtraBytes)}.

${profilesMd(r)}## Targets

| row | target | value | |
| --- | --- | ---: | --- |
${targets.join('\n')}

## Reproduce

\`\`\`sh
scripts/setup
${r.command}
\`\`\`
`;
}

async function fromJson(file: string): Promise<void> {
  const result = JSON.parse(await readFile(file, 'utf8')) as Result;
  await writeJson(join(ROOT, 'docs', 'benchmarks.json'), result);
  await writeFile(
    join(ROOT, 'docs', 'benchmarks.md'),
    markdown(result) + (await keptNotes(join(ROOT, 'docs', 'benchmarks.md'))),
  );
  console.log(summaryTable(result));
}

(args['from-json'] ? fromJson(String(args['from-json'])) : main()).catch((err) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exit(1);
});
