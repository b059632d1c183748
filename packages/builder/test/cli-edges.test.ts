import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BIN, ensureBuilt, runCli } from './helpers.ts';

const pexec = promisify(execFile);

/**
 * Issue 13, the rough edges of lading-build that need no registry: keys generate's --output,
 * split's part sizes, and no stack trace for any of it.
 */
describe('lading-build: keys generate and split edges (built binary)', function () {
  this.timeout(120_000);
  let dir: string;

  before(async () => {
    await ensureBuilt();
  });
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lading-edges-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const noStack = (stderr: string) => assert.doesNotMatch(stderr, /^\s+at /m, stderr);

  describe('keys generate --output', () => {
    it('the help example keys/release works: missing folders are created', async () => {
      const r = await runCli(['keys', 'generate', '--output', join(dir, 'keys/release')]);
      assert.equal(r.code, 0, r.stderr);
      noStack(r.stderr);
      assert.deepEqual((await readdir(join(dir, 'keys'))).sort(), ['release.key', 'release.pub']);
      assert.match(r.stdout, /created folder/);
    });

    it('a deeper missing folder (nodir/sub/key) too', async () => {
      const r = await runCli(['keys', 'generate', '-o', join(dir, 'nodir/sub/key')]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual((await readdir(join(dir, 'nodir/sub'))).sort(), ['key.key', 'key.pub']);
    });

    it('--output release.key writes release.key and release.pub, not release.key.key', async () => {
      const r = await runCli(['keys', 'generate', '--output', join(dir, 'release.key')]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual((await readdir(dir)).sort(), ['release.key', 'release.pub']);
    });

    it('an existing key is exit 2 without --force and neither file is touched; -f replaces', async () => {
      await writeFile(join(dir, 'release.pub'), 'old');
      const r = await runCli(['keys', 'generate', '--output', join(dir, 'release')]);
      assert.equal(r.code, 2, r.stderr);
      noStack(r.stderr);
      assert.match(r.stderr, /release\.pub already exists/);
      assert.deepEqual(await readdir(dir), ['release.pub']);
      const f = await runCli(['keys', 'generate', '--output', join(dir, 'release'), '-f']);
      assert.equal(f.code, 0, f.stderr);
      assert.match(await readFile(join(dir, 'release.pub'), 'utf8'), /BEGIN PUBLIC KEY/);
    });

    it('a file where a folder must be is exit 2 naming it, no stack trace', async () => {
      await writeFile(join(dir, 'afile'), 'x');
      const r = await runCli(['keys', 'generate', '--output', join(dir, 'afile/release')]);
      assert.equal(r.code, 2, r.stderr);
      noStack(r.stderr);
      assert.ok(r.stderr.includes(join(dir, 'afile')), r.stderr);
    });
  });

  describe('split --size', () => {
    let bundle: string;
    beforeEach(async () => {
      // split does not read the tar: any file stands in for a bundle here.
      bundle = join(dir, 'b.tar');
      await writeFile(bundle, Buffer.alloc(3 * 1024 * 1024, 7));
    });

    it('a size that would make thousands of parts is exit 2 with the smallest usable size, nothing written', async () => {
      const r = await runCli(['split', bundle, '--size', '100']);
      assert.equal(r.code, 2, r.stderr);
      noStack(r.stderr);
      assert.doesNotMatch(r.stderr, /EMFILE/);
      assert.match(r.stderr, /31,458 parts/);
      assert.match(r.stderr, /at least 3\.1 KiB/);
      assert.deepEqual(await readdir(dir), ['b.tar']);
    });

    it('999 parts are written without one file descriptor per part (200 allowed)', async () => {
      const size = String(Math.ceil((3 * 1024 * 1024) / 999));
      // At most 200 open files: one descriptor per part (twice, with the hasher) would be EMFILE.
      const r = await pexec(
        'sh',
        ['-c', 'ulimit -n 200 && exec "$0" "$@"', process.execPath, BIN, 'split', bundle, '--size', size],
        {
          env: { ...process.env, NODE_OPTIONS: '' },
        },
      ).then(
        (o) => ({ code: 0, stderr: o.stderr }),
        (e: { code?: number; stderr?: string }) => ({ code: e.code ?? 1, stderr: e.stderr ?? '' }),
      );
      assert.equal(r.code, 0, r.stderr);
      assert.equal((await readdir(dir)).filter((n) => /\.tar\.\d{3}$/.test(n)).length, 999);
    });

    it('a size larger than the bundle says that ONE part was written', async () => {
      const r = await runCli(['split', bundle, '--size', '100GB']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /ONE part/);
      assert.match(r.stdout, /^1 part/m);
    });
  });
});
