/** --double: Lading's build, push and verify once on a corpus of twice the scale (is peak RSS flat?). */
import { rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startRegistry } from '@lading/testkit';
import { fmtSec, fresh, LOAD_BIN, ladingEnv, log, NODE, ROOT, specYaml } from '../lib/common.ts';
import { makeCorpus } from '../lib/corpus.ts';
import type { DoubleResult } from '../lib/report.ts';
import { measure } from '../lib/run.ts';
import { createArgs, ladingTargetFlags, seed } from './bench.ts';

export async function runDoubled(
  scale: number,
  tmp: string,
  key: string,
  pub: string,
): Promise<DoubleResult> {
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
    const build = await measure(NODE, createArgs({ spec, output: bundle, key, src, home: benv.home }), {
      tmp,
      env: benv.env,
      label: 'lading-build create (2x)',
    });
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
