import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createGzip, gzipSync } from 'node:zlib';
import { tmpDir } from '@lading/testkit';
import {
  extractChart,
  InvalidChartError,
  loadLocalChart,
  packChart,
  readChartArchive,
  UnsafeArchiveError,
} from '../src/charts/index.ts';
import { encodeTar, type TarWriteEntry } from '../src/charts/tar.ts';
import { ExitCode } from '../src/errors/index.ts';

const run = promisify(execFile);
const FIXTURES = fileURLToPath(new URL('../../../fixtures/charts/', import.meta.url));
const WEBAPP = join(FIXTURES, 'webapp');
const PLAIN = join(FIXTURES, 'plain');

const chartYaml = 'apiVersion: v2\nname: evil\nversion: 1.0.0\n';
const ok = (extra: TarWriteEntry[]): Buffer =>
  gzipSync(encodeTar([{ path: 'evil/Chart.yaml', data: Buffer.from(chartYaml) }, ...extra]));

async function exists(p: string): Promise<boolean> {
  try {
    await readFile(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * The malicious-archive corpus, generated here (never committed as binaries). `dir` is the test's own
 * temp dir: the absolute-path member points into it, never at a shared path.
 */
const corpus: { name: string; reason: string; bytes: (dir: string) => Buffer | Promise<Buffer> }[] = [
  {
    name: 'path traversal',
    reason: 'path-traversal',
    bytes: () => ok([{ path: 'evil/../../escaped.txt', data: Buffer.from('pwned') }]),
  },
  {
    name: 'path traversal through a pax long name',
    reason: 'path-traversal',
    bytes: () => ok([{ path: `evil/${'a'.repeat(120)}/../../../escaped.txt`, data: Buffer.from('pwned') }]),
  },
  {
    name: 'absolute path',
    reason: 'absolute-path',
    bytes: (dir) => ok([{ path: join(dir, 'abs-escaped.txt'), data: Buffer.from('pwned') }]),
  },
  {
    name: 'symbolic link',
    reason: 'link',
    bytes: () =>
      ok([
        { path: 'evil/templates', type: 'SymbolicLink', linkpath: '/etc' },
        { path: 'evil/templates/passwd', data: Buffer.from('pwned') },
      ]),
  },
  {
    name: 'hard link',
    reason: 'link',
    bytes: () => ok([{ path: 'evil/passwd', type: 'Link', linkpath: '/etc/passwd' }]),
  },
  {
    name: 'character device',
    reason: 'device',
    bytes: () => ok([{ path: 'evil/null', type: 'CharacterDevice', devmaj: 1, devmin: 3 }]),
  },
  { name: 'fifo', reason: 'device', bytes: () => ok([{ path: 'evil/pipe', type: 'FIFO' }]) },
  {
    name: 'entry outside the chart folder',
    reason: 'outside-root',
    bytes: () => ok([{ path: 'other/values.yaml', data: Buffer.from('x: 1') }]),
  },
  {
    name: 'file at the top level',
    reason: 'outside-root',
    bytes: () => gzipSync(encodeTar([{ path: 'Chart.yaml', data: Buffer.from(chartYaml) }])),
  },
  {
    name: 'duplicate entry',
    reason: 'duplicate',
    bytes: () => ok([{ path: 'evil/Chart.yaml', data: Buffer.from(chartYaml) }]),
  },
  {
    name: 'huge declared size (10 GiB, no body)',
    reason: 'entry-too-large',
    bytes: () => ok([{ path: 'evil/big', size: 10 * 1024 ** 3 }]),
  },
  {
    name: 'gzip bomb: one 150 MiB file of zeros',
    reason: 'entry-too-large',
    bytes: async () => {
      const size = 150 * 1024 * 1024;
      const head = encodeTar([{ path: 'evil/Chart.yaml', data: Buffer.from(chartYaml) }]).subarray(0, 1024);
      const header = encodeTar([{ path: 'evil/zeros', size }]).subarray(0, 512);
      const zero = Buffer.alloc(1024 * 1024);
      const chunks: Buffer[] = [];
      const gz = createGzip({ level: 1 });
      const done = (async () => {
        for await (const c of gz) chunks.push(c as Buffer);
      })();
      gz.write(head);
      gz.write(header);
      for (let i = 0; i < 150; i++) if (!gz.write(zero)) await new Promise((r) => gz.once('drain', r));
      gz.end(Buffer.alloc(1024));
      await done;
      return Buffer.concat(chunks);
    },
  },
  {
    name: 'gzip bomb: many files under the per-file limit adding up to more than the total',
    reason: 'total-too-large',
    bytes: () => {
      const mb = Buffer.alloc(19 * 1024 * 1024);
      return ok(Array.from({ length: 6 }, (_, i) => ({ path: `evil/f${i}`, data: mb })));
    },
  },
  {
    name: 'too many entries',
    reason: 'too-many-entries',
    bytes: () => ok(Array.from({ length: 10_001 }, (_, i) => ({ path: `evil/e/${i}` }))),
  },
  {
    name: 'not an archive',
    reason: 'malformed',
    bytes: () => Buffer.from('this is not a tar file at all'.repeat(40)),
  },
  {
    name: 'truncated archive',
    reason: 'malformed',
    bytes: () =>
      gzipSync(encodeTar([{ path: 'evil/Chart.yaml', data: Buffer.alloc(2000, 97) }]).subarray(0, 1024)),
  },
  { name: 'gzip of zeros only', reason: 'malformed', bytes: () => gzipSync(Buffer.alloc(64 * 1024 * 1024)) },
];

describe('charts: archives', () => {
  let tmp: Awaited<ReturnType<typeof tmpDir>>;
  beforeEach(async () => {
    tmp = await tmpDir('lading-charts-test-');
  });
  afterEach(async () => {
    await tmp.cleanup();
  });

  describe('packChart', () => {
    it('packs a chart folder deterministically under <name>/ with Chart.yaml first', async () => {
      const a = await packChart(WEBAPP);
      const b = await packChart(WEBAPP);
      assert.ok(a.bytes.equals(b.bytes), 'two packs differ');
      assert.equal(a.digest, b.digest);
      assert.equal(a.metadata.name, 'webapp');
      assert.equal(a.files[0], 'Chart.yaml');
      await writeFile(join(tmp.path, 'webapp.tgz'), a.bytes);
      const list = (await run('tar', ['-tzf', join(tmp.path, 'webapp.tgz')])).stdout.trim().split('\n');
      assert.equal(list[0], 'webapp/Chart.yaml');
      assert.ok(list.every((p) => p.startsWith('webapp/')));
      assert.ok(list.includes('webapp/charts/redis/values.yaml'));
      const verbose = (await run('tar', ['--numeric-owner', '-tvzf', join(tmp.path, 'webapp.tgz')])).stdout;
      assert.match(verbose, /0\/0/);
      assert.match(verbose, /1970-01-01/);
    });

    it('uses SOURCE_DATE_EPOCH or the given mtime, so the digest depends on it', async () => {
      const a = await packChart(PLAIN, { mtime: new Date(0) });
      const b = await packChart(PLAIN, { mtime: new Date(1_700_000_000_000) });
      assert.notEqual(a.digest, b.digest);
      const old = process.env.SOURCE_DATE_EPOCH;
      process.env.SOURCE_DATE_EPOCH = '1700000000';
      try {
        assert.equal((await packChart(PLAIN)).digest, b.digest);
      } finally {
        if (old === undefined) delete process.env.SOURCE_DATE_EPOCH;
        else process.env.SOURCE_DATE_EPOCH = old;
      }
    });

    it('honours .helmignore and skips hidden files in templates/', async () => {
      const dir = join(tmp.path, 'webapp');
      await cp(WEBAPP, dir, { recursive: true });
      await writeFile(join(dir, 'values.yaml.swp'), 'junk');
      await mkdir(join(dir, 'scratch'));
      await writeFile(join(dir, 'scratch', 'notes.txt'), 'junk');
      await writeFile(join(dir, 'templates', '.hidden.yaml'), 'junk');
      await writeFile(join(dir, 'README.md'), '# webapp');
      const p = await packChart(dir);
      assert.ok(p.files.includes('README.md'));
      assert.ok(!p.files.includes('values.yaml.swp'));
      assert.ok(!p.files.some((f) => f.startsWith('scratch/')));
      assert.ok(!p.files.includes('templates/.hidden.yaml'));
    });

    it('refuses symbolic links in a chart folder', async () => {
      const dir = join(tmp.path, 'plain');
      await cp(PLAIN, dir, { recursive: true });
      await symlink('/etc/passwd', join(dir, 'templates', 'passwd'));
      await assert.rejects(
        packChart(dir),
        (e: unknown) => e instanceof InvalidChartError && /symbolic link/.test(e.message),
      );
    });

    it('refuses a folder without Chart.yaml', async () => {
      await assert.rejects(packChart(tmp.path), InvalidChartError);
    });
  });

  describe('readChartArchive', () => {
    it('reads metadata, values, templates and unpacked subcharts without touching disk', async () => {
      const { bytes } = await packChart(WEBAPP);
      const c = await readChartArchive(bytes, { source: 'webapp.tgz' });
      assert.equal(c.root, 'webapp');
      assert.equal(c.metadata.name, 'webapp');
      assert.equal(c.metadata.version, '1.4.2');
      assert.equal(c.metadata.appVersion, '2.3.1');
      assert.match(c.valuesYaml ?? '', /acme\/webapp/);
      assert.deepEqual(c.templates, [
        'templates/NOTES.txt',
        'templates/_helpers.tpl',
        'templates/deployment.yaml',
        'templates/service.yaml',
      ]);
      assert.equal(c.subcharts.length, 1);
      assert.equal(c.subcharts[0]?.path, 'charts/redis');
      assert.equal(c.subcharts[0]?.chart.metadata.appVersion, '7.2.4');
      assert.deepEqual(c.subcharts[0]?.chart.templates, ['templates/statefulset.yaml']);
      assert.ok(!c.files.some((f) => f.startsWith('charts/redis/')));
    });

    it('reads an archive made by GNU tar (independent packer), from a stream', async () => {
      const out = join(tmp.path, 'plain.tgz');
      await run('tar', ['-czf', out, '-C', FIXTURES, 'plain']);
      const { createReadStream } = await import('node:fs');
      const c = await readChartArchive(createReadStream(out), { source: out });
      assert.equal(c.metadata.name, 'plain');
      assert.deepEqual(c.templates, ['templates/configmap.yaml']);
    });

    it('reads subchart archives under charts/*.tgz', async () => {
      const dir = join(tmp.path, 'webapp');
      await cp(WEBAPP, dir, { recursive: true });
      const plain = await packChart(PLAIN);
      await writeFile(join(dir, 'charts', 'plain-0.1.0.tgz'), plain.bytes);
      const c = (await loadLocalChart(dir)).archive;
      assert.deepEqual(
        c.subcharts.map((s) => [s.path, s.chart.metadata.name]),
        [
          ['charts/plain-0.1.0.tgz', 'plain'],
          ['charts/redis', 'redis'],
        ],
      );
    });

    it('refuses an archive without Chart.yaml', async () => {
      const bytes = gzipSync(encodeTar([{ path: 'x/values.yaml', data: Buffer.from('a: 1') }]));
      await assert.rejects(readChartArchive(bytes), InvalidChartError);
    });

    for (const c of corpus) {
      it(`refuses a malicious archive: ${c.name}`, async function () {
        this.timeout(60_000);
        const bytes = await c.bytes(tmp.path);
        await assert.rejects(readChartArchive(bytes, { source: 'evil.tgz' }), (e: unknown) => {
          assert.ok(e instanceof UnsafeArchiveError, `got ${(e as Error).stack}`);
          assert.equal(e.reason, c.reason);
          assert.equal(e.code, 'UNSAFE_CHART_ARCHIVE');
          assert.equal(e.exitCode, ExitCode.usage);
          assert.match(e.message, /evil\.tgz/);
          return true;
        });
      });
    }
  });

  describe('extractChart', () => {
    it('extracts a chart under <dest>/<name>/ with its files', async () => {
      const { bytes } = await packChart(WEBAPP);
      const dest = join(tmp.path, 'out');
      const r = await extractChart(bytes, dest);
      assert.equal(r.dir, join(dest, 'webapp'));
      assert.ok(r.files.includes('charts/redis/values.yaml'));
      assert.equal(
        await readFile(join(r.dir, 'values.yaml'), 'utf8'),
        await readFile(join(WEBAPP, 'values.yaml'), 'utf8'),
      );
    });

    it('refuses a destination that is not empty', async () => {
      const { bytes } = await packChart(PLAIN);
      await writeFile(join(tmp.path, 'something'), 'x');
      await assert.rejects(extractChart(bytes, tmp.path), InvalidChartError);
    });

    for (const c of corpus.filter((x) => !/bomb|too many/.test(x.name))) {
      it(`writes nothing outside, and leaves nothing behind, for: ${c.name}`, async () => {
        const dest = join(tmp.path, 'a', 'b', 'dest');
        await assert.rejects(
          extractChart(await c.bytes(tmp.path), dest, { source: 'evil.tgz' }),
          UnsafeArchiveError,
        );
        assert.equal(await exists(join(tmp.path, 'a', 'escaped.txt')), false);
        assert.equal(await exists(join(tmp.path, 'escaped.txt')), false);
        assert.equal(await exists(join(tmp.path, 'abs-escaped.txt')), false);
        assert.deepEqual(await readdir(dest), []);
      });
    }

    it('stops a gzip bomb during extraction and removes what it wrote', async function () {
      this.timeout(60_000);
      const bomb = corpus.find((c) => c.reason === 'total-too-large');
      const dest = join(tmp.path, 'dest');
      await assert.rejects(extractChart(await bomb!.bytes(tmp.path), dest), UnsafeArchiveError);
      assert.deepEqual(await readdir(dest), []);
    });
  });
});
