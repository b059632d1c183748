import assert from 'node:assert/strict';
import type { KeyObject } from 'node:crypto';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  copyStandaloneLoader,
  findStandaloneLoader,
  generateKeyPair,
  LOADER_BINARY_ENV,
  LoaderBinaryError,
  loadPrivateKey,
  openParts,
  parseSums,
  STANDALONE_LOADER_NAME,
  verifyBundle,
  type WriteBundleResult,
  writeBundle,
} from '../src/bundle/index.ts';
import { ExitCode } from '../src/errors/index.ts';
import { DirFetcher, indexOf, ladingFor, makeImage, noise, run } from './bundle-write-fixtures.ts';

const hex = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * A stand-in for the standalone loader: an x86-64 ELF header, filler, and Node's SEA fuse in its
 * injected state placed across a 64 KiB read boundary (the copy looks for it while streaming).
 */
function fakeSeaBinary(opts: { injected?: boolean; machine?: number } = {}): Buffer {
  const b = noise(200_000, 7);
  b.writeUInt32BE(0x7f454c46, 0);
  b[4] = 2; // 64-bit
  b[5] = 1; // little-endian
  b.writeUInt16LE(opts.machine ?? 0x3e, 18);
  const fuse = Buffer.from(
    `NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2:${opts.injected === false ? 0 : 1}`,
  );
  fuse.copy(b, 65_536 - 20);
  return b;
}

describe('standalone loader beside a bundle (copyStandaloneLoader)', function () {
  this.timeout(60_000);
  let dir: string;
  let loader: Buffer;
  let loaderPath: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lading-loader-artifact-'));
    loader = fakeSeaBinary();
    loaderPath = join(dir, 'built', STANDALONE_LOADER_NAME);
    await mkdir(join(dir, 'built'));
    await writeFile(loaderPath, loader);
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** A small signed bundle, split into parts of `splitSize` bytes when given. */
  async function bundle(
    name: string,
    splitSize?: number,
  ): Promise<{ result: WriteBundleResult; pub: string; key: KeyObject }> {
    const store = join(dir, `${name}-store`);
    const images = [await makeImage(store, 'demo/a:1', 1), await makeImage(store, 'demo/b:1', 2)];
    const pair = generateKeyPair();
    const out = join(dir, name);
    await mkdir(out, { recursive: true });
    const output = join(out, `${name}.tar`);
    const key = await loadPrivateKey(pair.privateKeyPem);
    const result = await writeBundle({
      output: splitSize ? { path: output, splitSize } : output,
      ladingJson: ladingFor(images),
      index: indexOf(images),
      blobs: { fetcher: new DirFetcher(store), descriptors: images.flatMap((i) => i.blobs) },
      key,
      epoch: 1_700_000_000,
    });
    return { result, pub: pair.publicKeyPem, key };
  }

  it('unsplit bundle: copies the loader (0755) and writes NAME.tar.sha256 over the bundle and the loader', async () => {
    const { result } = await bundle('plain');
    const copy = await copyStandaloneLoader(result, { source: loaderPath });
    assert.equal(copy.path, join(dir, 'plain', STANDALONE_LOADER_NAME));
    assert.equal(copy.sha256, hex(loader));
    assert.equal(copy.size, loader.length);
    assert.deepEqual(await readFile(copy.path), loader);
    assert.equal((await stat(copy.path)).mode & 0o777, 0o755);
    assert.equal(copy.checksumFile, `${result.path}.sha256`);
    const text = await readFile(copy.checksumFile, 'utf8');
    assert.equal(
      text,
      `${hex(await readFile(result.path))}  plain.tar\n${hex(loader)}  ${STANDALONE_LOADER_NAME}\n`,
    );
    // Nothing else left in the folder (no temporary files).
    assert.deepEqual((await readdir(join(dir, 'plain'))).sort(), [
      STANDALONE_LOADER_NAME,
      'plain.tar',
      'plain.tar.sha256',
    ]);
    const c = run('sha256sum', ['-c', 'plain.tar.sha256'], join(dir, 'plain'));
    if (c.status !== null) assert.equal(c.status, 0, c.stdout + c.stderr);
  });

  it('unsplit bundle given by path: the bundle is hashed from the file', async () => {
    const { result } = await bundle('bypath');
    const copy = await copyStandaloneLoader(result.path, { source: loaderPath });
    const entries = parseSums(await readFile(copy.checksumFile, 'utf8'));
    assert.deepEqual(
      entries.map((e) => [e.path, e.hex]),
      [
        ['bypath.tar', result.digest.slice('sha256:'.length)],
        [STANDALONE_LOADER_NAME, hex(loader)],
      ],
    );
  });

  it('split bundle: one line appended to the parts file; running again replaces it; sha256sum -c passes', async () => {
    const { result, pub, key } = await bundle('split', 4096);
    assert.ok(result.files.length > 2, 'several parts');
    const partsBefore = await readFile(result.checksumFile!, 'utf8');
    const older = join(dir, 'older-loader');
    await writeFile(older, Buffer.concat([fakeSeaBinary(), Buffer.from('an older build')]));
    await copyStandaloneLoader(result, { source: older });
    const copy = await copyStandaloneLoader(result.files[0]!, { source: loaderPath, key });
    const after = await readFile(copy.checksumFile, 'utf8');
    // The rewritten list is signed again (NAME.tar.sha256.sig), as an auditor checks it with openssl.
    await writeFile(join(dir, 'split', 'release.pub'), pub);
    const o = run(
      'openssl',
      ['dgst', '-sha256', '-verify', 'release.pub', '-signature', 'split.tar.sha256.sig', 'split.tar.sha256'],
      join(dir, 'split'),
    );
    assert.equal(o.status, 0, o.stdout + o.stderr);
    await rm(join(dir, 'split', 'release.pub'));
    assert.equal(after, `${partsBefore}${hex(loader)}  ${STANDALONE_LOADER_NAME}\n`);
    const c = run('sha256sum', ['-c', 'split.tar.sha256'], join(dir, 'split'));
    if (c.status !== null) assert.equal(c.status, 0, c.stdout + c.stderr);

    // The readers still take the split bundle: the loader line is not a part.
    const parts = await openParts(result.files[0]!, { verify: true, requireChecksumFile: true });
    assert.equal(parts.paths.length, result.files.length);
    await parts.close();
    const report = await verifyBundle(result.files[0]!, { publicKey: pub });
    assert.equal(report.ok, true, JSON.stringify(report.problems));
  });

  it('refuses a file that is not an injected linux-x64 executable (exit 2), leaving nothing behind', async () => {
    const target = join(dir, 'refuse');
    await mkdir(target);
    await writeFile(join(target, 'r.tar'), 'not really a bundle');
    const cases: [string, Buffer][] = [
      ['plain-node', fakeSeaBinary({ injected: false })],
      ['arm64', fakeSeaBinary({ machine: 0xb7 })],
      ['script', Buffer.from('#!/bin/sh\necho hi\n')],
    ];
    for (const [name, data] of cases) {
      const p = join(dir, name);
      await writeFile(p, data);
      await assert.rejects(copyStandaloneLoader(join(target, 'r.tar'), { source: p }), (err: unknown) => {
        assert.ok(err instanceof LoaderBinaryError, String(err));
        assert.equal(err.exitCode, ExitCode.usage);
        assert.equal(err.code, 'LOADER_BINARY_INVALID');
        assert.match(err.message, new RegExp(name));
        return true;
      });
    }
    assert.deepEqual(await readdir(target), ['r.tar']);
  });

  describe('findStandaloneLoader', () => {
    it('an explicit path wins, then LADING_LOADER_BINARY, then dist/standalone upwards of searchFrom', async () => {
      const repo = join(dir, 'repo');
      await mkdir(join(repo, 'dist', 'standalone'), { recursive: true });
      await mkdir(join(repo, 'packages', 'builder'), { recursive: true });
      const built = join(repo, 'dist', 'standalone', STANDALONE_LOADER_NAME);
      await writeFile(built, loader);
      const from = [join(repo, 'packages', 'builder')];
      assert.equal(await findStandaloneLoader({ searchFrom: from, env: {} }), built);
      assert.equal(
        await findStandaloneLoader({ searchFrom: from, env: { [LOADER_BINARY_ENV]: loaderPath } }),
        loaderPath,
      );
      assert.equal(
        await findStandaloneLoader({
          source: built,
          searchFrom: [dir],
          env: { [LOADER_BINARY_ENV]: loaderPath },
        }),
        built,
      );
    });

    it('none found, or a named file missing: LoaderBinaryError with the hint to build it', async () => {
      await assert.rejects(
        findStandaloneLoader({ searchFrom: [join(dir, 'built')], env: {} }),
        (err: unknown) => {
          assert.ok(err instanceof LoaderBinaryError);
          assert.match(err.hint ?? '', /scripts\/build-loader/);
          return true;
        },
      );
      await assert.rejects(
        findStandaloneLoader({ env: { [LOADER_BINARY_ENV]: join(dir, 'nope') } }),
        (err: unknown) => err instanceof LoaderBinaryError && /LADING_LOADER_BINARY/.test(err.message),
      );
    });
  });
});
