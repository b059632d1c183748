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
import {
  type DoubleResult,
  fromJson,
  markdown,
  type RunSettings,
  Runs,
  report,
  summaryTable,
} from './lib/report.ts';
import { duBytes, freeBytes, measure, type Step } from './lib/run.ts';

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

const runs = new Runs();
const record = runs.record.bind(runs);
const ladingJson = runs.ladingJson;
const fsDelta = runs.fsDelta;
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
      const partial = report(
        runs,
        settings,
        m,
        corpus,
        bundleBytes,
        (await stat(peerTar)).size,
        seedMs,
        undefined,
      );
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
    const result = report(runs, settings, m, corpus, bundleBytes, peerBytes, seedMs, doubled);
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

(args['from-json'] ? fromJson(String(args['from-json'])) : main()).catch((err) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exit(1);
});
