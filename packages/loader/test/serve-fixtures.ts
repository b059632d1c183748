/** Test bundles for serve / install / mirror-config: testkit images (+ the webapp chart) → writeBundle. */
import { spawnSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import {
  Annotation,
  type BundleChart,
  type BundleInputFile,
  type BundleRelease,
  buildHelmArtifact,
  chartRefName,
  type Descriptor,
  type Digest,
  digestHex,
  generateKeyPair,
  type ImageIndex,
  type LadingJson,
  loadPrivateKey,
  packChart,
  writeBundle,
} from '@lading/core';
import { type CollectedRun, runCollect, type TestImage, writeTestImages } from '@lading/testkit';

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const WEBAPP_CHART = join(REPO_ROOT, 'fixtures', 'charts', 'webapp');

class DirFetcher {
  readonly dir: string;
  constructor(dir: string) {
    this.dir = dir;
  }
  async fetch(desc: Descriptor): Promise<Readable> {
    return createReadStream(join(this.dir, 'blobs', 'sha256', digestHex(desc.digest)));
  }
}

export interface TestBundle {
  path: string;
  publicKey: string;
  layout: string;
  images: TestImage[];
  /** Every root in index.json: image refs as written plus `charts/webapp:1.4.2` when asked. */
  refs: Array<{ ref: string; digest: string; mediaType: string }>;
  chart?: { name: string; version: string; manifest: Descriptor; archive: Descriptor };
}

export interface TestBundleOptions {
  /** Add fixtures/charts/webapp as a Helm OCI artifact (charts/webapp:1.4.2). */
  chart?: boolean;
  /** Override the source refs of the testkit images (ref in index.json) by their testkit ref. */
  renameImages?: Record<string, string>;
  chartEntry?: Partial<BundleChart>;
  releases?: BundleRelease[];
  /** upstreamDigest of lading.json images, by (renamed) ref. */
  upstreamDigests?: Record<string, string>;
  files?: BundleInputFile[];
  largeLayerBytes?: number;
}

async function putBlob(layout: string, bytes: Uint8Array, d: Descriptor): Promise<void> {
  await writeFile(join(layout, 'blobs', 'sha256', digestHex(d.digest)), bytes);
}

export async function buildTestBundle(dir: string, opts: TestBundleOptions = {}): Promise<TestBundle> {
  const layout = join(dir, 'layout');
  await mkdir(layout, { recursive: true });
  const images = await writeTestImages(layout, { largeLayerBytes: opts.largeLayerBytes ?? 512 * 1024 });
  const rename = (ref: string) => opts.renameImages?.[ref] ?? ref;
  const descriptors: Descriptor[] = [];
  for (const img of images) {
    for (const b of img.blobs) {
      const size = (await stat(join(layout, 'blobs', 'sha256', b.slice('sha256:'.length)))).size;
      descriptors.push({ mediaType: 'application/octet-stream', digest: b as Digest, size });
    }
  }
  const index: ImageIndex = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: images.map((i) => ({
      mediaType: i.mediaType,
      digest: i.digest as Digest,
      size: i.size,
      annotations: { [Annotation.refName]: rename(i.ref), [Annotation.containerdName]: rename(i.ref) },
    })),
  };
  const charts: BundleChart[] = [];
  let chart: TestBundle['chart'];
  if (opts.chart) {
    const packed = await packChart(WEBAPP_CHART, { mtime: new Date(0) });
    const art = buildHelmArtifact({ metadata: packed.metadata, chart: packed.bytes });
    await putBlob(layout, art.config.bytes, art.config.descriptor);
    await putBlob(layout, packed.bytes, art.layer);
    await putBlob(layout, art.manifest.bytes, art.manifest.descriptor);
    descriptors.push(art.config.descriptor, art.layer, art.manifest.descriptor);
    const ref = chartRefName(packed.metadata.name, packed.metadata.version);
    index.manifests.push({
      ...art.manifest.descriptor,
      annotations: { [Annotation.refName]: ref, [Annotation.containerdName]: ref },
    });
    chart = {
      name: packed.metadata.name,
      version: packed.metadata.version,
      manifest: art.manifest.descriptor,
      archive: art.layer,
    };
    charts.push({
      name: packed.metadata.name,
      version: packed.metadata.version,
      source: 'fixtures/charts/webapp',
      digest: art.manifest.descriptor.digest,
      archiveDigest: art.layer.digest,
      images: [],
      ...opts.chartEntry,
    });
  }
  const pair = generateKeyPair({ passphrase: 'pw' });
  const publicKey = join(dir, 'release.pub');
  await writeFile(publicKey, pair.publicKeyPem);
  const ladingJson: LadingJson = {
    schemaVersion: 1,
    name: 'testkit',
    version: '1.0.0',
    created: '2024-05-01T00:00:00Z',
    builder: { name: 'lading', version: '0.1.0' },
    platforms: [],
    images: images.map((i) => ({
      ref: rename(i.ref),
      digest: i.digest as Digest,
      upstreamDigest: (opts.upstreamDigests?.[rename(i.ref)] ?? i.digest) as Digest,
      mediaType: i.mediaType,
      platforms: i.platforms,
      size: i.totalSize,
    })),
    charts,
    releases: opts.releases ?? [],
    files: [],
  };
  const path = join(dir, 'bundle.tar');
  await writeBundle({
    output: path,
    ladingJson,
    index,
    blobs: { fetcher: new DirFetcher(layout), descriptors },
    ...(opts.files ? { files: opts.files } : {}),
    key: await loadPrivateKey(pair.privateKeyPem, 'pw'),
    epoch: 1_714_521_600,
  });
  return {
    path,
    publicKey,
    layout,
    images,
    refs: index.manifests.map((d) => ({
      ref: d.annotations?.[Annotation.refName] as string,
      digest: d.digest,
      mediaType: d.mediaType,
    })),
    ...(chart ? { chart } : {}),
  };
}

export function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {},
): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    ...(opts.input !== undefined ? { input: opts.input } : {}),
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

export function hasSkopeo(): boolean {
  return run('skopeo', ['--version']).status === 0;
}

/** The built CLI (`pnpm exec turbo run build` first). */
export const CLI = join(REPO_ROOT, 'packages', 'loader', 'bin', 'run.js');

export async function cliBuilt(): Promise<boolean> {
  try {
    await stat(join(REPO_ROOT, 'packages', 'loader', 'dist', 'commands'));
    return true;
  } catch {
    return false;
  }
}

export async function readJson<T>(path: string): Promise<T> {
  return JSON.parse(await readFile(path, 'utf8')) as T;
}

/** Like run, without blocking the event loop (needed when the server runs in this process). */
export function runAsync(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<CollectedRun> {
  return runCollect(cmd, args, opts);
}
