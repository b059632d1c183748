/** Test helpers for the push tests: a signed bundle from testkit's images (plus a chart), the CLI, registry checks. */
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  asDigest,
  buildHelmArtifact,
  type Descriptor,
  type Digest,
  digestOf,
  type Fetcher,
  generateKeyPair,
  type LadingJson,
  loadPrivateKey,
  packChart,
  writeBundle,
} from '@lading/core';
import { isolatedEnv, type RegistryServer, type TestImage, writeTestImages } from '@lading/testkit';

const here = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = resolve(here, '../../..');
export const CLI = join(REPO_ROOT, 'packages/loader/bin/run.js');

/** testkit image name → the full source reference the bundle records for it. */
export const SOURCE_REFS: Record<string, string> = {
  'demo/app:1.0': 'docker.io/demo/app:1.0',
  'demo/legacy:2.0': 'quay.io/demo/legacy:2.0',
  'demo/multi:3.0': 'ghcr.io/demo/multi:3.0',
  'demo/base-a:1': 'docker.io/demo/base-a:1',
  'demo/base-b:1': 'docker.io/demo/base-b:1',
  'demo/big:1.0': 'registry.example.com:5000/demo/big:1.0',
};

class DirFetcher implements Fetcher {
  readonly dir: string;
  constructor(dir: string) {
    this.dir = dir;
  }
  async fetch(desc: Descriptor) {
    return createReadStream(join(this.dir, 'blobs', 'sha256', desc.digest.slice('sha256:'.length)));
  }
}

export interface BundleEntry {
  /** Reference in index.json. */
  ref: string;
  digest: string;
  mediaType: string;
  size: number;
  kind: 'image' | 'chart';
  /** Every blob of the graph (root included). */
  blobs: string[];
}

export interface Fixture {
  dir: string;
  layout: string;
  images: TestImage[];
  /** The public key file. */
  pub: string;
  privatePem: string;
  chart: BundleEntry;
  entries: BundleEntry[];
  cleanup(): Promise<void>;
  /** Write a bundle from (a selection of) the entries. */
  bundle(name: string, opts?: BundleOpts): Promise<string>;
}

export interface BundleOpts {
  /** Entries to include (default all). */
  entries?: BundleEntry[];
  /** Extra index.json refs: [ref, entry] (same content under another name). */
  alias?: Array<[string, BundleEntry]>;
  /** A differential bundle: these blobs are left out and listed in since.omittedBlobs. */
  omit?: string[];
  since?: { name: string; version: string; digest?: string };
  version?: string;
  /** Releases for lading.json and extra files (`name` in files/, `path` on disk). */
  releases?: LadingJson['releases'];
  files?: Array<{ name: string; path: string }>;
  platforms?: string[];
  /** Change lading.json before it is written (fields the options above do not reach). */
  ladingPatch?: (l: LadingJson) => void;
  /** Write split parts of this many bytes (the returned path is the first part, NAME.000). */
  splitSize?: number;
}

async function put(layout: string, bytes: Buffer): Promise<void> {
  await writeFile(join(layout, 'blobs', 'sha256', digestOf(bytes).slice('sha256:'.length)), bytes);
}

/** testkit images (big layer of `largeLayerBytes`) and the plain fixture chart, in one layout. */
export async function makeFixture(largeLayerBytes = 4 * 1024 * 1024): Promise<Fixture> {
  const dir = await mkdtemp(join(tmpdir(), 'lading-push-'));
  const layout = join(dir, 'layout');
  const images = await writeTestImages(layout, { largeLayerBytes });
  const packed = await packChart(join(REPO_ROOT, 'fixtures/charts/plain'));
  const art = buildHelmArtifact({ metadata: packed.metadata, chart: packed.bytes });
  await put(layout, packed.bytes);
  await put(layout, art.config.bytes);
  await put(layout, art.manifest.bytes);
  const chart: BundleEntry = {
    ref: `charts/${packed.metadata.name}:${art.tag}`,
    digest: art.manifest.descriptor.digest,
    mediaType: art.manifest.descriptor.mediaType,
    size: art.manifest.descriptor.size,
    kind: 'chart',
    blobs: [art.manifest.descriptor.digest, art.config.descriptor.digest, art.layer.digest],
  };
  const entries: BundleEntry[] = images.map((i) => ({
    ref: SOURCE_REFS[i.ref] ?? i.ref,
    digest: i.digest,
    mediaType: i.mediaType,
    size: i.size,
    kind: 'image' as const,
    blobs: i.blobs,
  }));
  entries.push(chart);
  const pair = generateKeyPair({});
  const pub = join(dir, 'release.pub');
  await writeFile(pub, pair.publicKeyPem);
  const f: Fixture = {
    dir,
    layout,
    images,
    pub,
    privatePem: pair.privateKeyPem,
    chart,
    entries,
    cleanup: () => rm(dir, { recursive: true, force: true }),
    bundle: async (name, opts = {}) => {
      const chosen = opts.entries ?? entries;
      const omit = new Set(opts.omit ?? []);
      const blobSet = new Set<string>();
      for (const e of chosen) for (const b of e.blobs) if (!omit.has(b)) blobSet.add(b);
      const descriptors: Descriptor[] = [];
      for (const b of [...blobSet].sort()) {
        const size = (await stat(join(layout, 'blobs', 'sha256', b.slice('sha256:'.length)))).size;
        descriptors.push({ mediaType: 'application/octet-stream', digest: asDigest(b), size });
      }
      const refs: Array<[string, BundleEntry]> = [
        ...chosen.map((e) => [e.ref, e] as [string, BundleEntry]),
        ...(opts.alias ?? []),
      ];
      const index = {
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: refs.map(([ref, e]) => ({
          mediaType: e.mediaType,
          digest: e.digest,
          size: e.size,
          annotations: { 'org.opencontainers.image.ref.name': ref, 'io.containerd.image.name': ref },
        })),
      };
      const lading: LadingJson = {
        schemaVersion: 1,
        name: 'pushtest',
        version: opts.version ?? '1.0.0',
        created: '2024-05-01T00:00:00Z',
        builder: { name: 'lading', version: '0.1.0' },
        platforms: opts.platforms ?? [],
        images: refs
          .filter(([, e]) => e.kind === 'image')
          .map(([ref, e]) => ({
            ref,
            digest: e.digest as Digest,
            upstreamDigest: e.digest as Digest,
            mediaType: e.mediaType,
            platforms: [],
            size: e.size,
          })),
        charts: refs
          .filter(([, e]) => e.kind === 'chart')
          .map(([, e]) => ({
            name: 'plain',
            version: '0.1.0',
            source: 'fixtures/charts/plain',
            digest: e.digest as Digest,
            images: [],
          })),
        releases: opts.releases ?? [],
        files: [],
        ...(opts.omit
          ? {
              since: {
                name: opts.since?.name ?? 'pushtest',
                version: opts.since?.version ?? '0.9.0',
                digest: (opts.since?.digest ?? `sha256:${'0'.repeat(64)}`) as Digest,
                omittedBlobs: [...omit] as Digest[],
              },
            }
          : {}),
      };
      opts.ladingPatch?.(lading);
      const out = join(dir, 'bundles', name);
      await mkdir(dirname(out), { recursive: true });
      const written = await writeBundle({
        output: { path: out, overwrite: true, ...(opts.splitSize ? { splitSize: opts.splitSize } : {}) },
        ladingJson: lading,
        index: Buffer.from(JSON.stringify(index)),
        blobs: { fetcher: new DirFetcher(layout), descriptors },
        ...(opts.files ? { files: opts.files } : {}),
        key: await loadPrivateKey(pair.privateKeyPem),
        epoch: 1_714_521_600,
      });
      return written.files[0] as string;
    },
  };
  return f;
}

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Where the CLI runs of these tests keep verification stamps (one folder per test process). */
export const STATE_DIR = join(tmpdir(), `lading-push-state-${process.pid}`);
// A root hook: the stamps folder goes when the mocha run ends (this module loads once per run).
after(async () => {
  await rm(STATE_DIR, { recursive: true, force: true });
});

/** Run `lading-load ARGS` (the built CLI) as a child process. */

export function runCli(
  args: string[],
  opts: { stdin?: string; env?: NodeJS.ProcessEnv; onSpawn?: (pid: number) => void } = {},
): Promise<CliRun> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: REPO_ROOT,
      env: {
        ...isolatedEnv(),
        // Verification stamps go to the test's own folder, not the user's home.
        LADING_STATE_DIR: STATE_DIR,
        ...opts.env,
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => {
      stdout += c;
    });
    child.stderr.on('data', (c) => {
      stderr += c;
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolvePromise({ code, signal, stdout, stderr }));
    if (child.pid !== undefined) opts.onSpawn?.(child.pid);
    child.stdin.end(opts.stdin ?? '');
  });
}

/** CLI flags that reach a testkit registry (CA, plain HTTP, credentials through the env). */
export function registryFlags(reg: RegistryServer): { args: string[]; env: NodeJS.ProcessEnv } {
  const args: string[] = [];
  if (reg.mode === 'http') args.push('--plain-http');
  else if (reg.caFile) args.push('--ca-file', reg.caFile);
  const env: NodeJS.ProcessEnv = {};
  if (reg.username && reg.password) {
    env.LADING_REGISTRY_USERNAME = reg.username;
    env.LADING_REGISTRY_PASSWORD = reg.password;
  }
  return { args, env };
}

/** Repositories in the registry's storage (independent of any client): [] when nothing was written. */
export async function storedRepositories(reg: RegistryServer): Promise<string[]> {
  const root = join(reg.dataDir, 'docker/registry/v2/repositories');
  const out: string[] = [];
  const walk = async (d: string, rel: string): Promise<void> => {
    let names: string[];
    try {
      names = await readdir(d);
    } catch {
      return;
    }
    if (names.includes('_manifests') || names.includes('_layers') || names.includes('_uploads')) {
      out.push(rel);
      return;
    }
    for (const n of names) await walk(join(d, n), rel ? `${rel}/${n}` : n);
  };
  await walk(root, '');
  return out.sort();
}

/** Blobs in the registry's storage. */
export async function storedBlobCount(reg: RegistryServer): Promise<number> {
  const root = join(reg.dataDir, 'docker/registry/v2/blobs/sha256');
  let n = 0;
  try {
    for (const p of await readdir(root)) n += (await readdir(join(root, p))).length;
  } catch {
    return 0;
  }
  return n;
}

/** Flip one byte of a file in place (at `offset` from the end). */
export async function flipByte(file: string, fromEnd: number): Promise<void> {
  const b = await readFile(file);
  const i = b.length - fromEnd;
  b[i] = (b[i] as number) ^ 0xff;
  await writeFile(file, b);
}
