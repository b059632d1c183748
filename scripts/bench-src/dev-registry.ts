// Dev helper (not part of the bench): a Distribution registry on 127.0.0.1 seeded with the bench
// corpus, a spec and a key, kept running until killed. Prints the commands to time by hand.
import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startRegistry } from '@lading/testkit';
import { skopeoPushArgs } from './experiments/bench.ts';
import { ROOT, specYaml } from './lib/common.ts';
import { makeCorpus } from './lib/corpus.ts';

const out = process.argv[2] ?? '/tmp/dev';
const corpus = await makeCorpus({ scale: 1, cacheDir: join(ROOT, 'bench-out', 'corpus') });
const reg = await startRegistry({ mode: 'http' });
const queue = [...corpus.images];
const worker = async () => {
  for (let img = queue.shift(); img; img = queue.shift()) {
    execFileSync('skopeo', skopeoPushArgs(corpus.layoutDir, img, reg.host));
  }
};
await Promise.all([worker(), worker()]);
await writeFile(
  join(out, 'spec.yaml'),
  specYaml(
    'bench',
    '1.0.0',
    corpus.images.map((i) => `${reg.host}/${i.name}:${i.tag}`),
  ),
);
await writeFile(join(out, 'host'), reg.host);
console.log(`registry ${reg.host} ready; spec ${join(out, 'spec.yaml')}`);
setInterval(() => {}, 1 << 30);
