/** The clean run every experiment is checked against: corpus, keys, the clean bundle and its push. */
import { generateKeyPairSync } from 'node:crypto';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { seedRegistry, writeTestImages } from '@lading/testkit';
import { BUILD_BIN, fresh, ladingEnv, log, NODE, specYaml } from '../../bench-src/lib/common.ts';
import { run } from '../lib/proc.ts';
import { registryState } from '../lib/registry-state.ts';
import { type Ctx, create, fileSha, type Options, push, registry, stopRegistry } from './context.ts';

export async function setup(opts: Options): Promise<Ctx> {
  const dir = await fresh('setup');
  const layout = join(dir, 'layout');
  const images = await writeTestImages(layout, { largeLayerBytes: (opts.smoke ? 4 : 24) * 1024 * 1024 });
  const src = await registry();
  await seedRegistry(src, layout, images);
  const { env } = await ladingEnv();
  const keys = await run(NODE, [BUILD_BIN, 'keys', 'generate', '--output', join(dir, 'release')], { env });
  if (keys.code !== 0) throw new Error(`keys generate failed: ${keys.stderr}`);
  const other = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const otherKey = join(dir, 'other.key');
  const otherPub = join(dir, 'other.pub');
  await writeFile(otherKey, other.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  await writeFile(otherPub, other.publicKey.export({ type: 'spki', format: 'pem' }));
  const specDir = join(dir, 'spec');
  await mkdir(join(specDir, 'docs'), { recursive: true });
  await writeFile(join(specDir, 'docs', 'RUNBOOK.md'), '# Runbook\n\nLoad the bundle, then install.\n');
  const spec = join(specDir, 'lading.yaml');
  await writeFile(
    spec,
    `${specYaml(
      'rel',
      '1.0.0',
      images.map((i) => `${src.host}/${i.name}:${i.tag}`),
    )}files:\n  - docs/RUNBOOK.md\n`,
  );
  const ctx0 = { spec, key: join(dir, 'release.key') };
  const clean = join(dir, 'clean.tar');
  const c = await create(ctx0, clean, { plainHttp: src.host });
  if (c.code !== 0) throw new Error(`clean create failed (exit ${c.code}): ${c.stderr}`);
  const reg = await registry();
  const p = await push(clean, reg.host, join(dir, 'release.pub'));
  if (p.code !== 0) throw new Error(`clean push failed (exit ${p.code}): ${p.stderr}`);
  const cleanState = await registryState(reg.url);
  await stopRegistry(reg);
  log(
    `setup: ${images.length} images, bundle ${(await stat(clean)).size} bytes; clean create ${Math.round(c.ms)} ms, clean push ${Math.round(p.ms)} ms; ${Object.keys(cleanState).length} tags`,
  );
  return {
    opts,
    src,
    images,
    ...ctx0,
    pub: join(dir, 'release.pub'),
    otherKey,
    otherPub,
    specDir,
    clean,
    cleanSha: await fileSha(clean),
    cleanState,
    createMs: c.ms,
    pushMs: p.ms,
  };
}
