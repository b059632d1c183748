/**
 * Hostile `NAME.tar.sha256` (issue 10 §3): a split bundle whose parts checksum file names other files
 * (`../release.pub`, `release.pub`) or gives a part another hash (that part changed in one byte, same
 * length), its `.sig` kept or re-made by another key. `verify` must exit 3; `fetch` from the S3
 * stand-in must write nothing but the bundle's parts (and their checksum file, signature and loader),
 * and a `release.pub` beside the output (or one level up) stays untouched.
 */
import { createPrivateKey, sign } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { createS3Client, publishFiles } from '@lading/core';
import { startS3Server } from '@lading/testkit/s3';
import { run } from '../lib/proc.ts';
import { parseTar } from '../lib/tar.ts';
import { sha256 } from './context.ts';
import type { TrustCase, TrustRunners } from './trust.ts';

export async function hostileSumsCases(r: TrustRunners): Promise<TrustCase[]> {
  const dir = join(r.dir, 'sums');
  await mkdir(join(dir, 'src'), { recursive: true });
  const bundle = join(dir, 'src', 'rel.tar');
  await copyFile(r.clean, bundle);
  const size = (await stat(bundle)).size;
  const sp = await r.split(bundle, `${Math.ceil(size / 3 / 1024)}KiB`);
  if (sp.code !== 0) throw new Error(`split failed (exit ${sp.code}): ${sp.stderr}`);
  const parts = (await readdir(join(dir, 'src'))).filter((f) => /^rel\.tar\.\d{3}$/.test(f)).sort();
  const sumsName = 'rel.tar.sha256';
  const sumsText = await readFile(join(dir, 'src', sumsName), 'utf8');
  const evil = Buffer.from('-----BEGIN PUBLIC KEY-----\nattacker\n-----END PUBLIC KEY-----\n');
  const otherKey = createPrivateKey(await readFile(r.otherKey));
  const s3 = await startS3Server({ buckets: ['drop'] });
  const client = await createS3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  });
  const env = {
    ...(await r.env()),
    AWS_ACCESS_KEY_ID: s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
    AWS_REGION: s3.region,
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: join(dir, 'none'),
    AWS_SHARED_CREDENTIALS_FILE: join(dir, 'none'),
  };
  // The replaced part: one byte flipped in the middle of the bundle's largest member (inside its data,
  // never a tar header), so the part keeps its length and the archive stays well-formed.
  const biggest = parseTar(await readFile(bundle)).reduce((a, b) => (b.data.length > a.data.length ? b : a));
  const at = biggest.dataOffset! + Math.floor(biggest.data.length / 2);
  const partSize = (await stat(join(dir, 'src', parts[0]!))).size;
  const part1 = parts[Math.floor(at / partSize)]!;
  const flipAt = at % partSize;
  const list: Array<{ id: string; what: string; extra: string; resign: boolean; file?: string }> = [];
  for (const resign of [false, true]) {
    const sig = resign ? 'its .sig re-made by another key' : 'its .sig kept';
    list.push(
      {
        id: `sums:parent-release.pub${resign ? ':resigned' : ''}`,
        what: `NAME.tar.sha256 also lists \`../release.pub\`; ${sig}`,
        extra: `${sha256(evil)}  ../release.pub\n`,
        resign,
        file: '../release.pub',
      },
      {
        id: `sums:release.pub${resign ? ':resigned' : ''}`,
        what: `NAME.tar.sha256 also lists \`release.pub\`; ${sig}`,
        extra: `${sha256(evil)}  release.pub\n`,
        resign,
        file: 'release.pub',
      },
      {
        id: `sums:part-hash${resign ? ':resigned' : ''}`,
        what: `NAME.tar.sha256 gives \`${part1}\` another hash: that part changed in one byte, same length; ${sig}`,
        extra: '',
        resign,
      },
    );
  }
  const out: TrustCase[] = [];
  try {
    for (const c of list) {
      const name = c.id.replaceAll(':', '-').replaceAll('.', '_');
      const cdir = join(dir, name);
      const local = join(cdir, 'bundle');
      await mkdir(local, { recursive: true });
      for (const p of parts) await copyFile(join(dir, 'src', p), join(local, p));
      await copyFile(join(dir, 'src', `${sumsName}.sig`), join(local, `${sumsName}.sig`));
      let text = sumsText + c.extra;
      if (c.id.startsWith('sums:part-hash')) {
        const swapped = await readFile(join(local, part1));
        swapped[flipAt] = swapped[flipAt]! ^ 0xff;
        await writeFile(join(local, part1), swapped);
        text = sumsText
          .split('\n')
          .map((l) => (l.endsWith(`  ${part1}`) ? `${sha256(swapped)}  ${part1}` : l))
          .join('\n');
      }
      await writeFile(join(local, sumsName), text);
      if (c.resign)
        await writeFile(join(local, `${sumsName}.sig`), sign('sha256', Buffer.from(text), otherKey));
      const published = [...parts, sumsName, `${sumsName}.sig`].map((p) => join(local, p));
      if (c.file === 'release.pub') {
        await writeFile(join(local, 'release.pub'), evil);
        published.push(join(local, 'release.pub'));
      }
      const v = await r.verify(join(local, parts[0]!));
      await publishFiles(published, `s3://drop/${name}/`, { client });
      // the site: its own release.pub beside the output and one level up
      const site = join(cdir, 'site');
      const output = join(site, 'incoming');
      await mkdir(output, { recursive: true });
      const mine = Buffer.from('the site’s own release.pub\n');
      await writeFile(join(site, 'release.pub'), mine);
      await writeFile(join(output, 'release.pub'), mine);
      const f = await run(
        r.node,
        [
          r.loadBin,
          'fetch',
          `s3://drop/${name}/${parts[0]}`,
          '--output',
          `${output}/`,
          '--endpoint',
          s3.endpoint,
        ],
        { env },
      );
      const allowed = new Set([...parts, sumsName, `${sumsName}.sig`, 'release.pub']);
      const leaked = (await readdir(output)).filter((n) => !allowed.has(n) && !n.startsWith('lading-load'));
      for (const p of [join(site, 'release.pub'), join(output, 'release.pub')]) {
        if (!existsSync(p) || !(await readFile(p)).equals(mine))
          leaked.push(`${basename(site)}/…/release.pub replaced`);
      }
      if ((await readdir(site)).some((n) => n !== 'incoming' && n !== 'release.pub'))
        leaked.push('a file beside the output folder');
      const ok = v.code === 3 && leaked.length === 0;
      out.push({
        id: c.id,
        what: c.what,
        exit: v.code,
        fetchExit: f.code,
        leaked,
        expected: 'verify exit 3; fetch writes no other file and replaces no release.pub',
        ok,
        message: r.lastError(v),
      });
      r.log(`${c.id}: verify ${v.code}, fetch ${f.code}, leaked ${leaked.length} ${ok ? 'ok' : 'PROBLEM'}`);
    }
  } finally {
    client.destroy();
    await s3.stop();
  }
  return out;
}
