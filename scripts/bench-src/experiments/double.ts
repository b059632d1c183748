/**
 * --double: Lading's build, push and verify once on a corpus of twice the scale (is peak RSS flat?).
 * --large N: the same on a corpus of scale N alone (is time linear, memory flat at 20 GB?).
 */
import { rm, stat, statfs, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { startRegistry } from '@lading/testkit';
import { fmtSec, fresh, LOAD_BIN, ladingEnv, log, NODE, ROOT, specYaml } from '../lib/common.ts';
import { makeCorpus } from '../lib/corpus.ts';
import type { DoubleResult } from '../lib/report.ts';
import { measure } from '../lib/run.ts';
import { createArgs, ladingTargetFlags, seed } from './bench.ts';

/** Bytes of the corpus at scale 1 (2.04 GiB), to check the disk before generating one. */
const SCALE_1_BYTES = 2.2e9;

export function runDoubled(scale: number, tmp: string, key: string, pub: string): Promise<DoubleResult> {
  return runAtScale(scale * 2, tmp, key, pub, { label: '2x', dropCorpus: false });
}

/**
 * Lading's build, push and verify once on a corpus of `scale`. With `dropCorpus` the corpus layout
 * is deleted once it is in the source registry (a 20 GB run needs the disk for the registries and
 * the bundle); it is generated again next time.
 */
export async function runAtScale(
  scale: number,
  tmp: string,
  key: string,
  pub: string,
  opts: { label: string; dropCorpus: boolean },
): Promise<DoubleResult> {
  // At most two copies of the corpus at once (corpus + source registry, then source registry +
  // bundle, then bundle + target registry) when the corpus is dropped, four otherwise.
  await checkDisk(ROOT, scale * SCALE_1_BYTES, opts.dropCorpus ? 2.3 : 4.3);
  const corpus2 = await makeCorpus({ scale, cacheDir: join(ROOT, 'bench-out', 'corpus'), log });
  const src = await startRegistry({ mode: 'http' });
  const dst = await startRegistry({ mode: 'http' });
  try {
    await seed(corpus2, src, tmp);
    if (opts.dropCorpus) await rm(dirname(corpus2.layoutDir), { recursive: true, force: true });
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
    const build = await measure(NODE, createArgs({ spec, output: bundle, key, src, home: benv.home }), {
      tmp,
      env: benv.env,
      label: `lading-build create (${opts.label})`,
    });
    if (opts.dropCorpus) await src.stop(); // its storage is not needed any more
    const push = await measure(NODE, [LOAD_BIN, 'push', bundle, '--key', pub, ...ladingTargetFlags(dst)], {
      tmp,
      env: (await ladingEnv()).env,
      label: `lading-load push (${opts.label})`,
    });
    const verify = await measure(NODE, [LOAD_BIN, 'verify', bundle, '--key', pub], {
      tmp,
      env: (await ladingEnv()).env,
      label: `lading-load verify (${opts.label})`,
    });
    const bundleBytes = (await stat(bundle)).size;
    await rm(dir, { recursive: true, force: true });
    await rm(benv.home, { recursive: true, force: true });
    log(
      `${opts.label} corpus: build ${fmtSec(build.wallMs)} ${Math.round(build.maxRssKb / 1024)} MiB, push ${fmtSec(push.wallMs)} ${Math.round(push.maxRssKb / 1024)} MiB, verify ${fmtSec(verify.wallMs)} ${Math.round(verify.maxRssKb / 1024)} MiB`,
    );
    return { scale, totalBytes: corpus2.totalBytes, bundleBytes, build, push, verify };
  } finally {
    await src.stop();
    await dst.stop();
  }
}

/**
 * Refuse a run the disk cannot hold: `need` is how many times the corpus size must be free
 * (corpus, source registry, bundle, target registry).
 */
export async function checkDisk(at: string, corpusBytes: number, need: number): Promise<void> {
  const fs = await statfs(at);
  const free = fs.bavail * fs.bsize;
  if (free < corpusBytes * need) {
    throw new Error(
      `${at} has ${(free / 1e9).toFixed(0)} GB free; this run needs about ${((corpusBytes * need) / 1e9).toFixed(0)} GB (${need} x the corpus): free some space or choose a smaller --large`,
    );
  }
}
