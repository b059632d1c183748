/**
 * Test bundles built with the system tools only (GNU tar --format=posix, openssl, split,
 * sha256sum, python3's tarfile for hostile archives) — independent of Lading's writer.
 */

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export function sha256hex(b: Uint8Array | string): string {
  return createHash('sha256').update(b).digest('hex');
}

export function tmp(prefix = 'lading-bundle-read-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function run(cmd: string, args: string[], cwd?: string, input?: string): string {
  return execFileSync(cmd, args, { cwd, input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}

export interface Keys {
  key: string;
  pub: string;
  otherKey: string;
  otherPub: string;
}

export function makeKeys(dir: string): Keys {
  const k = (name: string) => {
    const key = join(dir, `${name}.key`);
    const pub = join(dir, `${name}.pub`);
    run('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key]);
    run('openssl', ['pkey', '-in', key, '-pubout', '-out', pub]);
    return { key, pub };
  };
  const a = k('release');
  const b = k('other');
  return { key: a.key, pub: a.pub, otherKey: b.key, otherPub: b.pub };
}

/** Deterministic pseudo-random bytes. */
export function bytes(n: number, seed: number): Buffer {
  const out = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

export interface Blob {
  digest: string;
  hex: string;
  size: number;
  mediaType: string;
  data: Buffer;
}

function blob(data: Buffer | string, mediaType: string): Blob {
  const b = Buffer.from(data);
  const hex = sha256hex(b);
  return { digest: `sha256:${hex}`, hex, size: b.length, mediaType, data: b };
}

const desc = (b: Blob, extra: Record<string, unknown> = {}) => ({
  mediaType: b.mediaType,
  digest: b.digest,
  size: b.size,
  ...extra,
});

export interface Staging {
  dir: string;
  /** Members in contract order (relative paths). */
  members: string[];
  blobs: {
    layer1: Blob;
    layer2: Blob;
    config1: Blob;
    config2: Blob;
    manifest1: Blob;
    manifest2: Blob;
    index: Blob;
    chartConfig: Blob;
    chartLayer: Blob;
    chartManifest: Blob;
  };
  refs: { app: string; multi: string; chart: string };
  values: Buffer;
}

export interface StagingOptions {
  /** Blobs left out of the bundle and listed in lading.json since.omittedBlobs. */
  omit?: (keyof Staging['blobs'])[];
  /** Size of layer1, the layer both images share (default 300 000 bytes). */
  layer1Bytes?: number;
}

/**
 * Write an extracted bundle into `dir`: two images (one single-platform, one multi-arch index
 * sharing a layer), one Helm chart artifact, one extra file, metadata, SHA256SUMS and a
 * signature made with `openssl dgst -sha256 -sign`.
 */
export function makeStaging(dir: string, keys: Keys, opts: StagingOptions = {}): Staging {
  const layer1 = blob(bytes(opts.layer1Bytes ?? 300_000, 1), 'application/vnd.oci.image.layer.v1.tar+gzip');
  const layer2 = blob(bytes(70_000, 2), 'application/vnd.oci.image.layer.v1.tar+gzip');
  const config1 = blob(
    JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }),
    'application/vnd.oci.image.config.v1+json',
  );
  const config2 = blob(
    JSON.stringify({ architecture: 'arm64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }),
    'application/vnd.oci.image.config.v1+json',
  );
  const manifest1 = blob(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: desc(config1),
      layers: [desc(layer1)],
    }),
    'application/vnd.oci.image.manifest.v1+json',
  );
  const manifest2 = blob(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: desc(config2),
      layers: [desc(layer1), desc(layer2)],
    }),
    'application/vnd.oci.image.manifest.v1+json',
  );
  const index = blob(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        desc(manifest1, { platform: { architecture: 'amd64', os: 'linux' } }),
        desc(manifest2, { platform: { architecture: 'arm64', os: 'linux' } }),
      ],
    }),
    'application/vnd.oci.image.index.v1+json',
  );
  const chartConfig = blob(
    JSON.stringify({ apiVersion: 'v2', name: 'demo', version: '1.0.0' }),
    'application/vnd.cncf.helm.config.v1+json',
  );
  const chartLayer = blob(bytes(5_000, 3), 'application/vnd.cncf.helm.chart.content.v1.tar+gzip');
  const chartManifest = blob(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: desc(chartConfig),
      layers: [desc(chartLayer)],
    }),
    'application/vnd.oci.image.manifest.v1+json',
  );
  const blobs = {
    layer1,
    layer2,
    config1,
    config2,
    manifest1,
    manifest2,
    index,
    chartConfig,
    chartLayer,
    chartManifest,
  };
  const refs = {
    app: 'docker.io/demo/app:1.0',
    multi: 'docker.io/demo/multi:3.0',
    chart: 'charts/demo:1.0.0',
  };
  const values = Buffer.from('replicaCount: 2\nimage:\n  repository: demo/app\n');
  const indexJson = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [
      desc(manifest1, {
        annotations: { 'org.opencontainers.image.ref.name': refs.app, 'io.containerd.image.name': refs.app },
      }),
      desc(index, {
        annotations: {
          'org.opencontainers.image.ref.name': refs.multi,
          'io.containerd.image.name': refs.multi,
        },
      }),
      desc(chartManifest, {
        annotations: {
          'org.opencontainers.image.ref.name': refs.chart,
          'io.containerd.image.name': refs.chart,
        },
      }),
    ],
  });
  const omitted = (opts.omit ?? []).map((k) => blobs[k].digest);
  const lading = {
    schemaVersion: 1,
    name: 'shop',
    version: '2.4.0',
    created: '2024-01-01T00:00:00Z',
    builder: { name: 'test', version: '0' },
    platforms: [],
    images: [
      {
        ref: refs.app,
        digest: manifest1.digest,
        upstreamDigest: manifest1.digest,
        mediaType: manifest1.mediaType,
        platforms: ['linux/amd64'],
        size: manifest1.size,
      },
      {
        ref: refs.multi,
        digest: index.digest,
        upstreamDigest: index.digest,
        mediaType: index.mediaType,
        platforms: ['linux/amd64', 'linux/arm64'],
        size: index.size,
      },
    ],
    charts: [
      { name: 'demo', version: '1.0.0', source: 'fixtures', digest: chartManifest.digest, images: [] },
    ],
    releases: [],
    files: [{ path: 'values/web.yaml', digest: `sha256:${sha256hex(values)}`, size: values.length }],
    since: omitted.length
      ? { name: 'shop', version: '2.3.0', digest: `sha256:${'a'.repeat(64)}`, omittedBlobs: omitted }
      : null,
  };
  const put = (rel: string, data: Buffer | string) => {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), data);
  };
  put('oci-layout', '{"imageLayoutVersion":"1.0.0"}');
  put('lading.json', JSON.stringify(lading, null, 2));
  put('index.json', indexJson);
  put(
    'sbom.cdx.json',
    JSON.stringify({ bomFormat: 'CycloneDX', specVersion: '1.6', version: 1, components: [] }),
  );
  put('files/values/web.yaml', values);
  const blobMembers: string[] = [];
  for (const [k, b] of Object.entries(blobs)) {
    if ((opts.omit ?? []).includes(k as keyof typeof blobs)) continue;
    const rel = `blobs/sha256/${b.hex}`;
    if (blobMembers.includes(rel)) continue;
    put(rel, b.data);
    blobMembers.push(rel);
  }
  const summed = [
    'oci-layout',
    'lading.json',
    'index.json',
    'sbom.cdx.json',
    'files/values/web.yaml',
    ...blobMembers,
  ];
  put('SHA256SUMS', summed.map((m) => `${sha256hex(readFileSync(join(dir, m)))}  ${m}\n`).join(''));
  sign(dir, keys.key);
  const members = [
    'oci-layout',
    'lading.json',
    'SHA256SUMS',
    'SHA256SUMS.sig',
    'index.json',
    'sbom.cdx.json',
    'files/values/web.yaml',
    ...blobMembers,
  ];
  return { dir, members, blobs, refs, values };
}

/** (Re)sign SHA256SUMS in a staging dir with openssl. */
export function sign(dir: string, key: string): void {
  run('openssl', [
    'dgst',
    '-sha256',
    '-sign',
    key,
    '-out',
    join(dir, 'SHA256SUMS.sig'),
    join(dir, 'SHA256SUMS'),
  ]);
}

/** `tar --format=posix -cf out -C dir <members in this order>`. */
export function tarUp(dir: string, members: string[], out: string, extra: string[] = []): string {
  run('tar', ['--format=posix', ...extra, '-cf', out, '-C', dir, ...members]);
  return out;
}

/** Flip one byte of `needle`'s first occurrence in the file (found by content, not by parsing). */
export function flipByteOf(file: string, needle: Buffer, at = 0): void {
  const buf = readFileSync(file);
  const i = buf.indexOf(needle);
  if (i < 0) throw new Error('needle not found in the tar');
  buf[i + at] = (buf[i + at] as number) ^ 0x01;
  writeFileSync(file, buf);
}

/** Append hostile entries to a tar with python3's tarfile (append mode keeps the rest). */
export function pythonTar(out: string, script: string): void {
  run('python3', ['-c', `import tarfile, io\nout = ${JSON.stringify(out)}\n${script}`]);
}
