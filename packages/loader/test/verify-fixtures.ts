/** Test bundles for the verify and fetch tests: testkit images + one Helm chart artifact + a file. */
import { spawnSync } from 'node:child_process';
import { createHash, type KeyObject } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import {
  asDigest,
  type CallOptions,
  type Descriptor,
  type Digest,
  type Fetcher,
  generateKeyPair,
  type LadingJson,
  loadPrivateKey,
  MediaType,
  NotFoundError,
  type WriteBundleResult,
  writeBundle,
} from '@lading/core';
import { runCollect, type TestImage, writeTestImages } from '@lading/testkit';

export const LOADER_ROOT = fileURLToPath(new URL('../', import.meta.url));
export const RUN_JS = join(LOADER_ROOT, 'bin', 'run.js');

class DirFetcher implements Fetcher {
  readonly dir: string;
  constructor(dir: string) {
    this.dir = dir;
  }
  async fetch(desc: Descriptor, _opts?: CallOptions): Promise<Readable> {
    const path = join(this.dir, 'blobs', 'sha256', desc.digest.slice('sha256:'.length));
    const s = createReadStream(path);
    await new Promise<void>((resolve, reject) => {
      s.once('open', () => resolve());
      s.once('error', (err: NodeJS.ErrnoException) =>
        reject(err.code === 'ENOENT' ? new NotFoundError(`blob ${desc.digest} not found`) : err),
      );
    });
    return s;
  }
}

async function putBlob(layout: string, data: Buffer, mediaType: string): Promise<Descriptor> {
  const hex = createHash('sha256').update(data).digest('hex');
  await writeFile(join(layout, 'blobs', 'sha256', hex), data);
  return { mediaType, digest: asDigest(`sha256:${hex}`), size: data.length };
}

export interface TestBundle {
  dir: string;
  /** The bundle path (for a split bundle: the first part). */
  bundle: string;
  pub: string;
  /** A second key pair's public key (wrong key). */
  otherPub: string;
  /** The private key that signed the bundle (to sign a rewritten NAME.tar.sha256). */
  key: KeyObject;
  images: TestImage[];
  chart: { ref: string; digest: string };
  result: WriteBundleResult;
}

/** A signed bundle in `dir` (split into parts of `splitSize` bytes when given). */
export async function buildTestBundle(
  dir: string,
  opts: { splitSize?: number; name?: string } = {},
): Promise<TestBundle> {
  const layout = join(dir, 'layout');
  const images = await writeTestImages(layout, { largeLayerBytes: 512 * 1024 });
  const descriptors: Descriptor[] = [];
  for (const img of images) {
    for (const b of img.blobs) {
      const size = (await stat(join(layout, 'blobs', 'sha256', b.slice('sha256:'.length)))).size;
      descriptors.push({ mediaType: 'application/octet-stream', digest: asDigest(b), size });
    }
  }
  // A Helm OCI artifact (config + chart archive layer).
  const config = await putBlob(
    layout,
    Buffer.from(JSON.stringify({ apiVersion: 'v2', name: 'web', version: '1.2.3' })),
    MediaType.helmConfig,
  );
  const archive = await putBlob(
    layout,
    gzipSync(Buffer.from('not really a chart, but bytes')),
    MediaType.helmChart,
  );
  const manifest = await putBlob(
    layout,
    Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociManifest, config, layers: [archive] }),
    ),
    MediaType.ociManifest,
  );
  descriptors.push(config, archive, manifest);
  const chartRef = 'charts/web:1.2.3';
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as {
    manifests: Descriptor[];
  };
  index.manifests.push({
    ...manifest,
    annotations: { 'org.opencontainers.image.ref.name': chartRef, 'io.containerd.image.name': chartRef },
  });
  const values = join(dir, 'web-values.yaml');
  await writeFile(values, 'replicaCount: 2\n');

  const pair = generateKeyPair();
  const key = await loadPrivateKey(pair.privateKeyPem);
  const pub = join(dir, 'release.pub');
  await writeFile(pub, pair.publicKeyPem);
  const other = generateKeyPair();
  const otherPub = join(dir, 'other.pub');
  await writeFile(otherPub, other.publicKeyPem);
  const lading: LadingJson = {
    schemaVersion: 1,
    name: 'shop',
    version: '2.4.0',
    created: '2024-05-01T00:00:00Z',
    builder: { name: 'lading', version: '0.1.0' },
    platforms: [],
    images: images.map((i) => ({
      ref: i.ref,
      digest: i.digest as Digest,
      upstreamDigest: i.digest as Digest,
      mediaType: i.mediaType,
      platforms: i.platforms,
      size: i.totalSize,
    })),
    charts: [
      {
        name: 'web',
        version: '1.2.3',
        source: 'https://charts.example.com',
        digest: manifest.digest,
        images: [],
      },
    ],
    releases: [],
    files: [],
  };
  const name = opts.name ?? 'shop-2.4.0.tar';
  await mkdir(join(dir, 'out'), { recursive: true });
  const output = join(dir, 'out', name);
  const result = await writeBundle({
    output: opts.splitSize ? { path: output, splitSize: opts.splitSize } : output,
    ladingJson: lading,
    index: { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: index.manifests },
    files: [{ name: 'values/web.yaml', path: values }],
    blobs: { fetcher: new DirFetcher(layout), descriptors },
    key,
    epoch: 1_714_521_600,
  });
  return {
    dir,
    bundle: result.files[0] as string,
    pub,
    otherPub,
    key,
    images,
    chart: { ref: chartRef, digest: manifest.digest },
    result,
  };
}

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Run the built `lading-load` CLI (needs `pnpm exec turbo run build`). */
export function cli(args: string[], env: NodeJS.ProcessEnv = {}, cwd?: string): CliResult {
  const r = spawnSync(process.execPath, [RUN_JS, ...args], {
    encoding: 'utf8',
    env: { ...process.env, CI: '1', ...env },
    cwd,
    maxBuffer: 64 * 1024 * 1024,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * Run the built CLI without blocking this process's event loop (needed when a server the CLI
 * talks to runs in this process, like the S3 stand-in).
 */
export function cliAsync(args: string[], env: NodeJS.ProcessEnv = {}, cwd?: string): Promise<CliResult> {
  return runCollect(process.execPath, [RUN_JS, ...args], {
    env: { ...process.env, CI: '1', ...env },
    ...(cwd !== undefined ? { cwd } : {}),
  });
}

/** Offset of a member's data in a tar, found by listing headers (ustar/pax, as the writer makes). */
export function memberOffset(tar: Buffer, name: string): { offset: number; size: number } {
  let pos = 0;
  let paxPath: string | undefined;
  while (pos + 512 <= tar.length) {
    const h = tar.subarray(pos, pos + 512);
    if (h.every((b) => b === 0)) break;
    const size = Number.parseInt(
      h.subarray(124, 136).toString('latin1').replace(/\0.*$/, '').trim() || '0',
      8,
    );
    const type = String.fromCharCode(h[156] ?? 0x30);
    const prefix = h.subarray(345, 500).toString('latin1').replace(/\0.*$/, '');
    const base = h.subarray(0, 100).toString('latin1').replace(/\0.*$/, '');
    const data = pos + 512;
    if (type === 'x') {
      const m = /\d+ path=([^\n]*)\n/.exec(tar.subarray(data, data + size).toString('utf8'));
      paxPath = m?.[1];
    } else {
      const full = paxPath ?? (prefix ? `${prefix}/${base}` : base);
      paxPath = undefined;
      if (full === name || full === `./${name}`) return { offset: data, size };
    }
    pos = data + Math.ceil(size / 512) * 512;
  }
  throw new Error(`${name} not found in the tar`);
}

/** A loopback S3 stand-in holding a bundle (releases/) and a split bundle (split/), with AWS env for the CLI. */
export interface S3Fixture {
  root: string;
  server: import('@lading/testkit/s3').S3Server;
  client: import('@lading/core').S3Client;
  t: TestBundle;
  split: TestBundle;
  env: NodeJS.ProcessEnv;
  stop(): Promise<void>;
}

export async function startS3Fixture(bucket: string, prefix: string): Promise<S3Fixture> {
  const { mkdtemp, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { startS3Server } = await import('@lading/testkit/s3');
  const { createS3Client, publishFiles } = await import('@lading/core');
  const root = await mkdtemp(join(tmpdir(), prefix));
  const server = await startS3Server({ buckets: [bucket] });
  const client = await createS3Client({
    endpoint: server.endpoint,
    region: server.region,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
  });
  const t = await buildTestBundle(join(root, 'b'));
  const split = await buildTestBundle(join(root, 's'), { splitSize: 200 * 1024 });
  await publishFiles([t.bundle], `s3://${bucket}/releases/`, { client });
  const checksumFile = split.result.checksumFile as string;
  await publishFiles([...split.result.files, checksumFile, `${checksumFile}.sig`], `s3://${bucket}/split/`, {
    client,
  });
  const env = {
    AWS_ACCESS_KEY_ID: server.accessKeyId,
    AWS_SECRET_ACCESS_KEY: server.secretAccessKey,
    AWS_REGION: server.region,
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: join(root, 'none'),
    AWS_SHARED_CREDENTIALS_FILE: join(root, 'none'),
  };
  return {
    root,
    server,
    client,
    t,
    split,
    env,
    stop: async () => {
      client.destroy();
      await server.stop();
      await rm(root, { recursive: true, force: true });
    },
  };
}
