import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ChartRepo, startChartRepo } from '@lading/testkit/chart-repo';
import {
  ChartNotFoundError,
  ChartRepoAuthError,
  ChartRepoError,
  ChartRepoTLSError,
  type ChartVersionEntry,
  chartArchiveUrl,
  discoverImages,
  downloadChart,
  downloadChartBytes,
  fetchRepoIndex,
  findChartVersion,
  InvalidVersionConstraintError,
  readChartArchive,
  selectVersion,
} from '../src/charts/index.ts';
import { DigestMismatchError } from '../src/digest/index.ts';
import { ExitCode } from '../src/errors/index.ts';

const FIXTURES = fileURLToPath(new URL('../../../fixtures/charts/', import.meta.url));
const WEBAPP = join(FIXTURES, 'webapp');
const PLAIN = join(FIXTURES, 'plain');

const v = (version: string): ChartVersionEntry => ({
  name: 'nginx',
  version,
  urls: [`nginx-${version}.tgz`],
});

describe('charts: version selection', () => {
  const list = ['18.0.0', '18.1.0', '18.1.5', '18.2.0-rc.1', '17.3.2', '19.0.0', 'not-semver'].map(v);

  it('picks an exact version, or the highest match of a range', () => {
    assert.equal(selectVersion(list, '18.1.0').version, '18.1.0');
    assert.equal(selectVersion(list, '^18.1.0').version, '18.1.5');
    assert.equal(selectVersion(list, '~18.1').version, '18.1.5');
    assert.equal(selectVersion(list, '>=17 <19').version, '18.1.5');
    assert.equal(selectVersion(list, undefined).version, '19.0.0');
    assert.equal(selectVersion(list, '*').version, '19.0.0');
    assert.equal(selectVersion(list, 'not-semver').version, 'not-semver');
  });

  it('considers prereleases only when asked, or when named exactly', () => {
    assert.equal(selectVersion(list, '^18.1.0', { includePrerelease: true }).version, '18.2.0-rc.1');
    assert.equal(selectVersion(list, '18.2.0-rc.1').version, '18.2.0-rc.1');
  });

  it('names chart, constraint, repository and available versions when nothing matches (exit 4)', () => {
    assert.throws(
      () => selectVersion(list, '^20.0.0', { repo: 'https://charts.example.com' }),
      (e: unknown) => {
        assert.ok(e instanceof ChartNotFoundError);
        assert.equal(e.exitCode, ExitCode.remote);
        assert.equal(e.chart, 'nginx');
        assert.equal(e.constraint, '^20.0.0');
        assert.deepEqual(e.available.slice(0, 3), ['19.0.0', '18.2.0-rc.1', '18.1.5']);
        assert.match(e.message, /\^20\.0\.0.*https:\/\/charts\.example\.com.*19\.0\.0/);
        // the spec has no includePrerelease: the hint says what works there
        assert.doesNotMatch(e.hint ?? '', /includePrerelease/);
        assert.match(e.hint ?? '', /newest: 19\.0\.0, 18\.2\.0-rc\.1, 18\.1\.5/);
        return true;
      },
    );
    // a prerelease the range leaves out: named, with the exact version and a range that takes it
    assert.throws(
      () => selectVersion(list, '>=18.1.6 <19'),
      (e: unknown) => {
        assert.ok(e instanceof ChartNotFoundError);
        assert.doesNotMatch(e.hint ?? '', /includePrerelease/);
        assert.match(e.hint ?? '', /version: 18\.2\.0-rc\.1/);
        assert.match(e.hint ?? '', /">=18\.2\.0-0 >=18\.1\.6 <19"/);
        assert.equal(selectVersion(list, '>=18.2.0-0 >=18.1.6 <19').version, '18.2.0-rc.1');
        return true;
      },
    );
    assert.throws(() => selectVersion(list, '18.1.9'), ChartNotFoundError);
    assert.throws(() => selectVersion(list, 'not a range!'), InvalidVersionConstraintError);
  });

  it('resolves relative archive URLs against the repository URL', () => {
    assert.equal(chartArchiveUrl('https://h/stable', v('1.0.0')).href, 'https://h/stable/nginx-1.0.0.tgz');
    assert.equal(
      chartArchiveUrl('https://h/stable/', { ...v('1'), urls: ['https://cdn/x.tgz'] }).href,
      'https://cdn/x.tgz',
    );
    assert.equal(
      chartArchiveUrl('https://h/a/b', { ...v('1'), urls: ['../c/x.tgz'] }).href,
      'https://h/a/c/x.tgz',
    );
  });
});

describe('charts: HTTP chart repository (nginx on loopback)', function () {
  this.timeout(60_000);

  describe('plain HTTP', () => {
    let repo: ChartRepo;
    before(async () => {
      repo = await startChartRepo({
        charts: [WEBAPP, { path: WEBAPP, version: '1.5.0' }, { path: WEBAPP, version: '1.6.0-rc.1' }, PLAIN],
      });
    });
    after(async () => {
      await repo?.stop();
    });

    it('fetches and parses index.yaml', async () => {
      const index = await fetchRepoIndex({ url: repo.url });
      assert.equal(index.apiVersion, 'v1');
      assert.deepEqual(Object.keys(index.entries).sort(), ['plain', 'webapp']);
      assert.deepEqual(index.entries.webapp?.map((e) => e.version).sort(), ['1.4.2', '1.5.0', '1.6.0-rc.1']);
      assert.match(index.entries.plain?.[0]?.digest ?? '', /^[a-f0-9]{64}$/);
    });

    it('selects exact versions and ranges, and names what is available when nothing matches', async () => {
      const index = await fetchRepoIndex({ url: `${repo.url}/` });
      assert.equal(findChartVersion(index, 'webapp', '1.4.2').version, '1.4.2');
      assert.equal(findChartVersion(index, 'webapp', '^1.4.0').version, '1.5.0');
      assert.equal(
        findChartVersion(index, 'webapp', '^1.4.0', { includePrerelease: true }).version,
        '1.6.0-rc.1',
      );
      assert.throws(
        () => findChartVersion(index, 'webapp', '~2.0'),
        (e: unknown) =>
          e instanceof ChartNotFoundError &&
          e.repo === repo.url &&
          e.available.join(',') === '1.6.0-rc.1,1.5.0,1.4.2' &&
          e.exitCode === 4,
      );
      assert.throws(
        () => findChartVersion(index, 'nope', '1.0.0'),
        (e: unknown) => e instanceof ChartNotFoundError && e.available.length === 0 && /nope/.test(e.message),
      );
    });

    it('downloads an archive with a digest check, and it reads as the chart', async () => {
      const index = await fetchRepoIndex({ url: repo.url });
      const entry = findChartVersion(index, 'webapp', '1.5.0');
      const d = await downloadChartBytes({ url: repo.url }, entry);
      assert.equal(d.url, `${repo.url}/webapp-1.5.0.tgz`);
      assert.equal(d.expected, `sha256:${entry.digest}`);
      const chart = await readChartArchive(d.bytes, { source: d.url });
      assert.equal(chart.metadata.version, '1.5.0');
      assert.ok(discoverImages(chart).some((i) => i.image === 'docker.io/acme/webapp:2.3.1'));
      // Streaming form straight into the archive reader.
      const s = await downloadChart({ url: repo.url }, entry);
      assert.equal((await readChartArchive(s.stream)).metadata.name, 'webapp');
    });

    it('fails with DigestMismatchError (exit 3) on a tampered archive', async () => {
      const index = await fetchRepoIndex({ url: repo.url });
      const entry = findChartVersion(index, 'plain', '0.1.0');
      const served = repo.charts.find((c) => c.name === 'plain');
      assert.ok(served);
      const original = (await downloadChartBytes({ url: repo.url }, entry)).bytes;
      const tampered = Buffer.from(original);
      tampered[tampered.length - 5] = (tampered[tampered.length - 5] ?? 0) ^ 0xff;
      await writeFile(served.file, tampered);
      try {
        await assert.rejects(
          downloadChartBytes({ url: repo.url }, entry),
          (e: unknown) => e instanceof DigestMismatchError && e.exitCode === ExitCode.verification,
        );
      } finally {
        await writeFile(served.file, original);
      }
    });

    it('refuses an archive above the size limit', async () => {
      const index = await fetchRepoIndex({ url: repo.url });
      const entry = findChartVersion(index, 'webapp', '1.4.2');
      await assert.rejects(
        downloadChartBytes({ url: repo.url }, entry, { maxSize: 100 }),
        /larger than|more than/,
      );
    });

    it('reports a missing repository as a remote error naming the URL', async () => {
      await assert.rejects(
        fetchRepoIndex({ url: `${repo.url}/missing` }),
        (e: unknown) =>
          e instanceof ChartRepoError && e.status === 404 && e.message.includes('/charts/missing'),
      );
    });
  });

  describe('basic auth', () => {
    let repo: ChartRepo;
    before(async () => {
      repo = await startChartRepo({ charts: [PLAIN], basicAuth: { username: 'alice', password: 's3cret' } });
    });
    after(async () => {
      await repo?.stop();
    });

    it('reads with the right credentials (also from the URL)', async () => {
      const index = await fetchRepoIndex({ url: repo.url, username: 'alice', password: 's3cret' });
      const entry = findChartVersion(index, 'plain', '0.1.0');
      const d = await downloadChartBytes({ url: repo.url, username: 'alice', password: 's3cret' }, entry);
      assert.equal((await readChartArchive(d.bytes)).metadata.name, 'plain');
      const withUrl = repo.url.replace('http://', 'http://alice:s3cret@');
      const idx2 = await fetchRepoIndex({ url: withUrl });
      assert.equal(idx2.url.includes('s3cret'), false);
    });

    it('fails with ChartRepoAuthError (exit 4) on a wrong password or none', async () => {
      for (const creds of [{ username: 'alice', password: 'wrong' }, {}]) {
        await assert.rejects(
          fetchRepoIndex({ url: repo.url, ...creds }),
          (e: unknown) =>
            e instanceof ChartRepoAuthError &&
            e.code === 'CHART_REPO_AUTH' &&
            e.exitCode === ExitCode.remote &&
            e.status === 401 &&
            e.message.includes(repo.url) &&
            typeof e.hint === 'string',
        );
      }
    });
  });

  describe('TLS', () => {
    let repo: ChartRepo;
    before(async () => {
      repo = await startChartRepo({ charts: [PLAIN], tls: true });
    });
    after(async () => {
      await repo?.stop();
    });

    it('works with the CA file', async () => {
      assert.ok(repo.url.startsWith('https://'));
      const index = await fetchRepoIndex({ url: repo.url, caFile: repo.caFile! });
      const entry = findChartVersion(index, 'plain', '0.1.0');
      const d = await downloadChartBytes({ url: repo.url, caFile: repo.caFile! }, entry);
      assert.equal((await readChartArchive(d.bytes)).metadata.name, 'plain');
    });

    it('fails with ChartRepoTLSError (exit 4) without the CA, and works insecure only when asked', async () => {
      await assert.rejects(
        fetchRepoIndex({ url: repo.url }),
        (e: unknown) =>
          e instanceof ChartRepoTLSError &&
          e.exitCode === ExitCode.remote &&
          e.message.includes(repo.url) &&
          /CA/.test(e.hint ?? ''),
      );
      const index = await fetchRepoIndex({ url: repo.url, insecure: true });
      assert.ok(index.entries.plain);
    });
  });
});
