/**
 * The push verification stamp is trusted only in a state folder that this user owns and nobody
 * else can write (issue 10 §3): otherwise anyone could forge a stamp and skip the hashing pass.
 */
import assert from 'node:assert/strict';
import { chmod, chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  bundleFiles,
  hasVerifiedStamp,
  stampProblem,
  type VerifiedStamp,
  writeVerifiedStamp,
} from '../src/lib/push/verified-stamp.ts';

describe('push verification stamp: where it may be trusted', () => {
  let root: string;
  let files: VerifiedStamp['files'];
  const key = 'sha256:k';
  const sums = 'sha256:s';
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'lading-stamp-'));
    const bundle = join(root, 'b.tar');
    await writeFile(bundle, Buffer.alloc(10240)); // an empty tar: two zero blocks and more
    files = (await bundleFiles(bundle)) ?? [];
    assert.equal(files.length, 1);
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('own folder, mode 0700: written and trusted', async () => {
    const dir = join(root, 'ok');
    await writeVerifiedStamp({ files, keyFingerprint: key, sumsDigest: sums }, dir);
    assert.equal(await stampProblem(files, dir), undefined);
    assert.equal(await hasVerifiedStamp(files, key, sums, dir), true);
  });

  it('a folder writable by others: the stamp is neither trusted nor written', async () => {
    const dir = join(root, 'shared');
    await writeVerifiedStamp({ files, keyFingerprint: key, sumsDigest: sums }, dir);
    await chmod(dir, 0o777);
    assert.match((await stampProblem(files, dir)) ?? '', /writable by others/);
    assert.equal(await hasVerifiedStamp(files, key, sums, dir), false);
  });

  it('a folder owned by another user: not trusted', async function () {
    if (process.getuid?.() !== 0) this.skip(); // chown needs root
    const dir = join(root, 'theirs');
    await writeVerifiedStamp({ files, keyFingerprint: key, sumsDigest: sums }, dir);
    await chown(dir, 54321, 54321);
    assert.match((await stampProblem(files, dir)) ?? '', /owned by uid 54321/);
    assert.equal(await hasVerifiedStamp(files, key, sums, dir), false);
  });
});
