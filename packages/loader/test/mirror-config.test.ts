import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidInputError } from '@lading/core';
import { parse } from 'yaml';
import { formatMirrorConfig, mirrorConfig, writeMirrorFiles } from '../src/lib/mirror-config/index.ts';
import {
  PathCollisionError,
  parseRegistryTarget,
  planTargetPaths,
  RegistryTargetError,
} from '../src/lib/registry-target.ts';

const images = [
  'docker.io/library/nginx:1.27.3',
  'quay.io/prometheus/node-exporter:v1.8.2',
  'docker.io/bitnami/redis@sha256:' + 'a'.repeat(64),
];

describe('registry target and paths', () => {
  it('parses HOST[:PORT][/PREFIX] including IPv6 hosts', () => {
    assert.deepEqual(parseRegistryTarget('harbor.local/airgap'), { host: 'harbor.local', prefix: 'airgap' });
    assert.deepEqual(parseRegistryTarget('127.0.0.1:5000'), { host: '127.0.0.1:5000', prefix: '' });
    assert.deepEqual(parseRegistryTarget('[::1]:5000/a/b/'), { host: '[::1]:5000', prefix: 'a/b' });
    for (const bad of ['https://harbor.local', 'harbor.local/UPPER', 'nohost', '']) {
      assert.throws(() => parseRegistryTarget(bad), RegistryTargetError, bad);
    }
  });

  it('drops the source host and puts the prefix in front', () => {
    const plan = planTargetPaths(parseRegistryTarget('harbor.local/airgap'), images);
    assert.equal(plan.get(images[0]!)?.repository, 'airgap/library/nginx');
    assert.equal(plan.get(images[1]!)?.repository, 'airgap/prometheus/node-exporter');
  });

  it('stops before writing when two sources land on the same path, naming both', () => {
    const clash = ['docker.io/team/app:1', 'ghcr.io/team/app:1', 'docker.io/team/app:2'];
    assert.throws(
      () => planTargetPaths(parseRegistryTarget('reg.local'), clash),
      (e: unknown) =>
        e instanceof PathCollisionError &&
        e.exitCode === 2 &&
        e.collisions.length === 1 &&
        e.collisions[0]!.sources.join(',') === 'docker.io/team/app,ghcr.io/team/app',
    );
  });
});

describe('mirror-config', () => {
  const target = parseRegistryTarget('harbor.local/airgap');

  it('containerd: one hosts.toml per source registry, override_path with a prefix', () => {
    const c = mirrorConfig('containerd', { target, images, name: 'shop', caFile: '/etc/ssl/harbor-ca.crt' });
    assert.deepEqual(
      c.files.map((f) => f.path),
      ['certs.d/docker.io/hosts.toml', 'certs.d/quay.io/hosts.toml'],
    );
    const docker = c.files[0]!.content;
    assert.match(docker, /^server = "https:\/\/registry-1\.docker\.io"$/m);
    assert.match(docker, /^\[host\."https:\/\/harbor\.local\/v2\/airgap"\]$/m);
    assert.match(docker, /^ {2}override_path = true$/m);
    assert.match(docker, /^ {2}ca = "\/etc\/ssl\/harbor-ca\.crt"$/m);
  });

  it('k3s: mirrors with a rewrite for the prefix, and the CA', () => {
    const c = mirrorConfig('k3s', { target, images, name: 'shop', caFile: '/ca.crt' });
    const doc = parse(c.files[0]!.content) as {
      mirrors: Record<string, { endpoint: string[]; rewrite: Record<string, string> }>;
      configs: Record<string, { tls: { ca_file: string } }>;
    };
    assert.deepEqual(Object.keys(doc.mirrors).sort(), ['docker.io', 'quay.io']);
    assert.deepEqual(doc.mirrors['docker.io']!.endpoint, ['https://harbor.local']);
    assert.equal(doc.mirrors['docker.io']!.rewrite['^(.*)$'], 'airgap/$1');
    assert.equal(doc.configs['harbor.local']!.tls.ca_file, '/ca.crt');
  });

  it('idms: one entry per source repository with the relocated mirror', () => {
    const c = mirrorConfig('idms', { target, images, name: 'Shop 2', plainHttp: false });
    const doc = parse(c.files[0]!.content) as {
      kind: string;
      metadata: { name: string };
      spec: { imageDigestMirrors: Array<{ source: string; mirrors: string[] }> };
    };
    assert.equal(doc.kind, 'ImageDigestMirrorSet');
    assert.equal(doc.metadata.name, 'lading-shop-2');
    assert.deepEqual(doc.spec.imageDigestMirrors, [
      { source: 'docker.io/bitnami/redis', mirrors: ['harbor.local/airgap/bitnami/redis'] },
      { source: 'docker.io/library/nginx', mirrors: ['harbor.local/airgap/library/nginx'] },
      {
        source: 'quay.io/prometheus/node-exporter',
        mirrors: ['harbor.local/airgap/prometheus/node-exporter'],
      },
    ]);
  });

  it('idms and itms: a platform-filtered index is listed as upstream -> bundled, and the instructions say its upstream digest fails', () => {
    const up = `sha256:${'1'.repeat(64)}`;
    const bundled = `sha256:${'2'.repeat(64)}`;
    const digestChanges = [{ ref: 'docker.io/library/nginx:1.27.3', upstreamDigest: up, digest: bundled }];
    for (const format of ['idms', 'itms'] as const) {
      const c = mirrorConfig(format, { target, images, name: 'shop', digestChanges });
      const text = c.files[0]!.content;
      assert.match(
        text,
        new RegExp(`# {3}docker\\.io/library/nginx:1\\.27\\.3: upstream ${up} -> bundled ${bundled}`),
      );
      assert.match(c.instructions, /1 platform-filtered index\(es\) got a new digest/);
      const doc = parse(text) as { kind: string; spec: Record<string, unknown[]> };
      assert.equal(doc.kind, format === 'idms' ? 'ImageDigestMirrorSet' : 'ImageTagMirrorSet');
      assert.equal(doc.spec[format === 'idms' ? 'imageDigestMirrors' : 'imageTagMirrors']!.length, 3);
    }
    assert.match(
      mirrorConfig('idms', { target, images, name: 'shop' }).instructions,
      /keeps digests unchanged/,
    );
  });

  it('registries-conf: a mirror per source registry with the prefix in its location', () => {
    const c = mirrorConfig('registries-conf', { target, images, name: 'shop' });
    const text = c.files[0]!.content;
    assert.equal((text.match(/^\[\[registry\]\]$/gm) ?? []).length, 2);
    assert.match(
      text,
      /prefix = "quay\.io"\nlocation = "quay\.io"\n\n\[\[registry\.mirror\]\]\nlocation = "harbor\.local\/airgap"/,
    );
  });

  it('formatMirrorConfig prints every file under a header plus the instructions', () => {
    const c = mirrorConfig('containerd', {
      target: parseRegistryTarget('harbor.local/airgap'),
      images: ['docker.io/library/nginx:1', 'quay.io/a/b:2'],
      name: 'x',
    });
    const text = formatMirrorConfig(c);
    assert.match(text, /^# ==> certs\.d\/docker\.io\/hosts\.toml <==$/m);
    assert.match(text, /^# ==> certs\.d\/quay\.io\/hosts\.toml <==$/m);
    assert.match(text, /config_path/);
  });
});

describe('mirror-config --output', () => {
  it('refuses to replace files without --force (naming them, writing none); overwrite replaces', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lading-mirror-out-'));
    try {
      const config = mirrorConfig('containerd', {
        target: parseRegistryTarget('harbor.local/airgap'),
        images,
        name: 'shop',
      });
      const existing = join(dir, 'certs.d/quay.io/hosts.toml');
      await writeMirrorFiles(
        dir,
        config.files.filter((f) => f.path.includes('quay.io')),
      );
      await writeFile(existing, 'mine');
      await rm(join(dir, 'certs.d/docker.io'), { recursive: true, force: true });
      await assert.rejects(writeMirrorFiles(dir, config.files), (err: unknown) => {
        assert.ok(err instanceof InvalidInputError);
        assert.ok(err.message.includes(existing), err.message);
        assert.match(err.hint ?? '', /--force/);
        return true;
      });
      assert.equal(await readFile(existing, 'utf8'), 'mine');
      await assert.rejects(readFile(join(dir, 'certs.d/docker.io/hosts.toml')));
      const written = await writeMirrorFiles(dir, config.files, { overwrite: true });
      assert.equal(written.length, config.files.length);
      assert.notEqual(await readFile(existing, 'utf8'), 'mine');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
