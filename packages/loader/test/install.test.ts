/**
 * `lading-load install`. Helm and a Kubernetes API server cannot run on these machines, so these
 * tests use a STAND-IN helm: a small Node script that records its arguments, copies every values
 * file it is given (-f) into a folder and exits 0 — or 1 with an error for one chosen release.
 * What is asserted is what a real helm would be asked to do: the order of releases, the command
 * lines, and the content of each values file (release, profile, user and generated relocation).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  BundleTarget,
  discoverChartImages,
  generateKeyPair,
  packChart,
  readChartArchive,
} from '@lading/core';
import { needs, tmpDir } from '@lading/testkit';
import { parse } from 'yaml';
import { parseValuesPath, planInstall, relocationValues } from '../src/lib/install/index.ts';
import { parseRegistryTarget } from '../src/lib/registry-target.ts';
import { buildTestBundle, CLI, cliBuilt, run, type TestBundle, WEBAPP_CHART } from './serve-fixtures.ts';

const STAND_IN_HELM = `#!/usr/bin/env node
// Stand-in for helm (helm and Kubernetes cannot run here): records argv and copies -f files.
const fs = require('node:fs');
const path = require('node:path');
const rec = process.env.HELM_RECORD_DIR;
const args = process.argv.slice(2);
const n = fs.readdirSync(rec).filter((f) => f.endsWith('.json')).length;
const release = args[2];
const files = [];
args.forEach((a, i) => {
  if (a === '-f') {
    const dst = path.join(rec, String(n).padStart(2, '0') + '-' + release + '-' + files.length + '.yaml');
    fs.copyFileSync(args[i + 1], dst);
    files.push(dst);
  }
});
if (fs.existsSync(args[3])) fs.copyFileSync(args[3], path.join(rec, 'chart-' + n + '.tgz'));
fs.writeFileSync(path.join(rec, String(n).padStart(2, '0') + '.json'), JSON.stringify({ args, files }));
if (process.env.HELM_FAIL_RELEASE === release) {
  process.stderr.write('Error: UPGRADE FAILED: stand-in refused ' + release + '\\n');
  process.exit(1);
}
process.stdout.write('Release "' + release + '" has been upgraded. Happy Helming!\\n');
`;

const PINNED = 'sha256:4f0a2b6e1c1f3f1a7f2a5d4b9a0d1e2c3b4a5968778695a4b3c2d1e0f9a8b7c6';

interface Recorded {
  args: string[];
  files: string[];
}

describe('install', function () {
  this.timeout(300_000);
  let dir: { path: string; cleanup(): Promise<void> };
  let tb: TestBundle;
  let helm: string;
  let multiDigest: string;

  before(async () => {
    dir = await tmpDir('lading-install-');
    const packed = await packChart(WEBAPP_CHART, { mtime: new Date(0) });
    const discovered = discoverChartImages(await readChartArchive(packed.bytes));
    const imagePaths = discovered.images.map((i) => ({ image: i.image, path: i.path, kind: i.kind }));
    const values = join(dir.path, 'values');
    await mkdir(values);
    const files: Record<string, string> = {
      'web.yaml': 'replicaCount: 1\nservice:\n  port: 8080\n',
      'web-demo.yaml': 'demo: true\n',
      'web-ha.yaml': 'replicaCount: 3\n',
      'api.yaml': 'service:\n  port: 9090\n',
      'api-ha.yaml': 'replicaCount: 5\n',
    };
    for (const [name, text] of Object.entries(files)) await writeFile(join(values, name), text);
    tb = await buildTestBundle(join(dir.path, 'b'), {
      chart: true,
      chartEntry: { images: discovered.images.map((i) => i.image), imagePaths },
      // The chart's images, played by testkit images; statsd-exporter is pinned upstream and
      // re-indexed in the bundle (its bundled digest differs, as after a platform filter).
      renameImages: {
        'demo/app:1.0': 'docker.io/acme/webapp:2.3.1',
        'demo/multi:3.0': `quay.io/prometheus/statsd-exporter:v0.27.1@${PINNED}`,
      },
      upstreamDigests: { [`quay.io/prometheus/statsd-exporter:v0.27.1@${PINNED}`]: PINNED },
      releases: [
        {
          name: 'web',
          chart: 'webapp',
          namespace: 'web',
          values: ['values/web.yaml'],
          profiles: { demo: ['values/web-demo.yaml'], 'prod-ha': ['values/web-ha.yaml'] },
        },
        {
          name: 'api',
          chart: 'webapp',
          namespace: 'api',
          values: ['values/api.yaml'],
          profiles: { 'prod-ha': ['values/api-ha.yaml'] },
        },
        { name: 'tools', chart: 'webapp', values: [] },
      ],
      files: Object.keys(files).map((n) => ({ name: `values/${n}`, path: join(values, n) })),
    });
    multiDigest = tb.images.find((i) => i.ref === 'demo/multi:3.0')!.digest;
    helm = join(dir.path, 'bin', 'helm');
    await mkdir(join(dir.path, 'bin'));
    await writeFile(helm, STAND_IN_HELM);
    await chmod(helm, 0o755);
  });
  after(async () => dir?.cleanup());

  describe('relocation values (library)', () => {
    it('parses values paths with list indexes', () => {
      assert.deepEqual(parseValuesPath('initContainers[0].image'), ['initContainers', 0, 'image']);
      assert.deepEqual(parseValuesPath('a.b[2][1].c'), ['a', 'b', 2, 1, 'c']);
    });

    it('points every discovered path at the registry, keeping the prefix with the registry', async () => {
      const target = await BundleTarget.open(tb.path);
      try {
        const plan = await planInstall(target, {
          target: parseRegistryTarget('harbor.local:8443/airgap'),
          workDir: '/w',
        });
        const reloc = plan.releases[0]!.relocation;
        // biome-ignore lint/suspicious/noExplicitAny: free-form values tree, asserted field by field
        const v = reloc.values as Record<string, any>;
        assert.equal(v.global.imageRegistry, 'harbor.local:8443/airgap');
        // map with a registry field
        assert.deepEqual(v.image, { registry: 'harbor.local:8443/airgap', repository: 'acme/webapp' });
        // the chart's helper renders global.imageRegistry | default image.registry + "/" + repository
        assert.equal(
          `${v.global.imageRegistry || v.image.registry}/${v.image.repository}`,
          'harbor.local:8443/airgap/acme/webapp',
        );
        // pinned: the bundled digest replaces the upstream one
        assert.deepEqual(v.metrics.image, {
          registry: 'harbor.local:8443/airgap',
          repository: 'prometheus/statsd-exporter',
          digest: multiDigest,
        });
        // host inside repository, no registry field: the full relocated name goes into repository
        assert.deepEqual(v.migrations.image, { repository: 'harbor.local:8443/airgap/acme/migrate' });
        // plain strings: the full relocated reference
        assert.equal(v.sidecars.logShipper.image, 'harbor.local:8443/airgap/fluent/fluent-bit:3.1.9');
        // a list: the chart's default list copied, only the image changed
        assert.deepEqual(v.initContainers, [
          { name: 'wait-for-db', image: 'harbor.local:8443/airgap/library/busybox:1.36' },
        ]);
        // the subchart (alias cache)
        assert.deepEqual(v.cache.image, {
          registry: 'harbor.local:8443/airgap',
          repository: 'bitnami/redis',
        });
        // annotation-only images are reported, not set
        const kubectl = reloc.entries.find((e) => e.image.startsWith('registry.k8s.io/kubectl'));
        assert.equal(kubectl?.kind, 'annotation');
        assert.deepEqual(kubectl?.set, {});
      } finally {
        await target.close();
      }
    });

    it('without the chart archive, list paths are skipped with a note', () => {
      const r = relocationValues(
        {
          name: 'x',
          version: '1',
          source: '',
          digest: multiDigest as never,
          images: [],
          imagePaths: [{ image: 'docker.io/library/busybox:1', path: 'init[0].image', kind: 'string' }],
        },
        { images: [] } as never,
        parseRegistryTarget('reg.local'),
        undefined,
      );
      assert.deepEqual(r.values, { global: { imageRegistry: 'reg.local' } });
      assert.match(r.entries[0]!.note ?? '', /list/);
    });
  });

  describe('the CLI with a stand-in helm', () => {
    let rec: string;
    let n = 0;
    before(async function () {
      needs(this, await cliBuilt(), 'the built lading-load (pnpm exec turbo run build)');
    });
    beforeEach(async () => {
      rec = join(dir.path, `rec-${++n}`);
      await mkdir(rec);
    });

    /** Runs install; without --key in args, with --skip-verify (the refusal test passes `verify: 'none'`). */
    function install(args: string[], env: Record<string, string> = {}, verify: 'auto' | 'none' = 'auto') {
      const skip = verify === 'auto' && !args.includes('--key') ? ['--skip-verify'] : [];
      return run(process.execPath, [CLI, 'install', tb.path, ...args, ...skip], {
        env: { ...process.env, HELM_RECORD_DIR: rec, ...env },
      });
    }
    async function recorded(): Promise<Recorded[]> {
      const names = (await readdir(rec)).filter((f) => f.endsWith('.json')).sort();
      return Promise.all(
        names.map(async (f) => JSON.parse(await readFile(join(rec, f), 'utf8')) as Recorded),
      );
    }
    // biome-ignore lint/suspicious/noExplicitAny: free-form values files, asserted field by field
    const yamlOf = async (p: string) => parse(await readFile(p, 'utf8')) as Record<string, any>;

    it('installs every release in order with release, profile, user and relocation values', async () => {
      const user = join(dir.path, 'site.yaml');
      await writeFile(user, 'site: airgap-1\n');
      const r = install([
        '--registry',
        '127.0.0.1:5000/airgap',
        '--helm',
        helm,
        '--profile',
        'prod-ha',
        '--values',
        user,
        '--plain-http',
        '--create-namespace',
        '--key',
        tb.publicKey,
        '--json',
      ]);
      assert.equal(r.status, 0, r.stderr + r.stdout);
      const out = JSON.parse(r.stdout);
      assert.equal(out.verified, true);
      assert.deepEqual(
        out.releases.map((x: { name: string }) => x.name),
        ['web', 'api', 'tools'],
      );
      assert.match(out.releases[0].output, /Happy Helming/);
      const calls = await recorded();
      assert.deepEqual(
        calls.map((c) => c.args[2]),
        ['web', 'api', 'tools'],
      );
      const web = calls[0]!;
      assert.deepEqual(web.args.slice(0, 12), [
        'upgrade',
        '--install',
        'web',
        // pinned by the verified chart digest, not only by the movable version tag
        `oci://127.0.0.1:5000/airgap/charts/webapp@${tb.chart!.manifest.digest}`,
        '--version',
        '1.4.2',
        '--namespace',
        'web',
        '--create-namespace',
        '--plain-http',
        '-f',
        web.args[11]!,
      ]);
      assert.equal(web.files.length, 4);
      assert.deepEqual(await yamlOf(web.files[0]!), { replicaCount: 1, service: { port: 8080 } });
      assert.deepEqual(await yamlOf(web.files[1]!), { replicaCount: 3 });
      assert.deepEqual(await yamlOf(web.files[2]!), { site: 'airgap-1' });
      const reloc = await yamlOf(web.files[3]!);
      assert.equal(reloc.global.imageRegistry, '127.0.0.1:5000/airgap');
      assert.equal(reloc.image.registry, '127.0.0.1:5000/airgap');
      assert.equal(reloc.image.repository, 'acme/webapp');
      assert.equal(reloc.metrics.image.digest, multiDigest);
      assert.equal(reloc.sidecars.logShipper.image, '127.0.0.1:5000/airgap/fluent/fluent-bit:3.1.9');
      // api: its own values and its prod-ha set; tools: no profile, only user + relocation
      assert.deepEqual(await yamlOf(calls[1]!.files[1]!), { replicaCount: 5 });
      assert.equal(calls[2]!.files.length, 2);
      assert.ok(!calls[2]!.args.includes('--namespace'));
    });

    it('--release filters; --chart-source bundle hands helm the bundled chart archive', async () => {
      const r = install([
        '--registry',
        'reg.local',
        '--helm',
        helm,
        '--release',
        'api',
        '--chart-source',
        'bundle',
      ]);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /installed api in api: webapp 1\.4\.2/);
      const calls = await recorded();
      assert.equal(calls.length, 1);
      const chartArg = calls[0]!.args[3]!;
      assert.match(chartArg, /webapp-1\.4\.2\.tgz$/);
      assert.ok(!calls[0]!.args.includes('--version'));
      // helm got the chart archive stored in the bundle, byte for byte.
      const tgz = await readFile(join(rec, 'chart-0.tgz'));
      assert.equal(`sha256:${createHash('sha256').update(tgz).digest('hex')}`, tb.chart!.archive.digest);
      // The work folder (values, chart) is removed afterwards.
      await assert.rejects(readFile(chartArg));
    });

    it('--dry-run prints commands and the generated values, runs nothing; --json too', async () => {
      const r = install(['--registry', 'reg.local/p', '--helm', helm, '--dry-run', '--profile', 'demo']);
      assert.equal(r.status, 0, r.stderr);
      assert.match(
        r.stdout,
        /upgrade --install web oci:\/\/reg\.local\/p\/charts\/webapp@sha256:[0-9a-f]{64} --version 1\.4\.2 --namespace web/,
      );
      assert.match(r.stdout, /imageRegistry: reg\.local\/p/);
      assert.match(r.stdout, /\(profile: files\/values\/web-demo\.yaml\)/);
      assert.deepEqual(await recorded(), []);
      const j = install(['--registry', 'reg.local/p', '--dry-run', '--json']);
      assert.equal(j.status, 0, j.stderr);
      const plan = JSON.parse(j.stdout).plan;
      assert.equal(plan.releases.length, 3);
      assert.equal(plan.commands.length, 3);
      assert.match(plan.releases[0].relocationYaml, /repository: acme\/webapp/);
    });

    it('--dry-run --output DIR writes the values files there: the printed -f paths exist (issue 13)', async () => {
      const out = join(dir.path, 'plan');
      const r = install(['--registry', 'reg.local/p', '--helm', helm, '--dry-run', '--output', out]);
      assert.equal(r.status, 0, r.stderr);
      const paths = [...r.stdout.matchAll(/ -f (\S+)/g)].map((m) => m[1] as string);
      assert.ok(paths.length >= 3, r.stdout);
      for (const p of paths) {
        assert.ok(p.startsWith(out), `${p} is under ${out}`);
        await readFile(p);
      }
      assert.doesNotMatch(r.stdout, /XXXXXX/);
      // Without --output the paths say DIR/ and the output says how to get real ones.
      const d = install(['--registry', 'reg.local/p', '--helm', helm, '--dry-run']);
      assert.match(d.stdout, / -f DIR\//);
      assert.match(d.stdout, /--output DIR/);
    });

    it('--dry-run warns when helm is not on PATH (the install will need it)', () => {
      const r = install(['--registry', 'reg.local/p', '--dry-run'], { PATH: '/nonexistent' });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stderr, /warning: helm was not found on PATH/);
    });

    it('refuses without --key or --skip-verify (exit 2), runs no helm; a wrong key → exit 3', async () => {
      const none = install(['--registry', 'reg.local', '--helm', helm], {}, 'none');
      assert.equal(none.status, 2, none.stderr);
      assert.match(none.stderr, /--key/);
      assert.match(none.stderr, /--skip-verify/);
      const other = join(dir.path, 'other.pub');
      await writeFile(other, generateKeyPair().publicKeyPem);
      const wrong = install(['--registry', 'reg.local', '--helm', helm, '--key', other]);
      assert.equal(wrong.status, 3, wrong.stderr);
      assert.deepEqual(await recorded(), [], 'helm never ran');
    });

    it('unknown profile → exit 2 listing the profiles; unknown release → exit 2', () => {
      const p = install(['--registry', 'reg.local', '--helm', helm, '--profile', 'huge']);
      assert.equal(p.status, 2, p.stderr);
      assert.match(p.stderr, /huge/);
      assert.match(p.stderr, /demo, prod-ha/);
      const rel = install(['--registry', 'reg.local', '--helm', helm, '--release', 'nope']);
      assert.equal(rel.status, 2);
      assert.match(rel.stderr, /web, api, tools/);
    });

    it('missing helm → exit 2 saying how to get it or use --helm', () => {
      const r = install(['--registry', 'reg.local'], { PATH: join(dir.path, 'empty-path') });
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, /helm was not found on PATH/);
      assert.match(r.stderr, /--helm PATH/);
      const bad = install(['--registry', 'reg.local', '--helm', join(dir.path, 'nohelm')]);
      assert.equal(bad.status, 2);
    });

    it("a helm failure → exit 4 naming the release, with helm's stderr; later releases not run", async () => {
      const r = install(['--registry', 'reg.local', '--helm', helm, '--json'], { HELM_FAIL_RELEASE: 'api' });
      assert.equal(r.status, 4, r.stderr);
      const err = JSON.parse(r.stdout).error;
      assert.equal(err.code, 'HELM_FAILED');
      assert.match(err.message, /release api/);
      assert.match(err.message, /UPGRADE FAILED: stand-in refused api/);
      assert.match(err.hint, /web/);
      assert.deepEqual(
        (await recorded()).map((c) => c.args[2]),
        ['web', 'api'],
      );
    });
  });
});
