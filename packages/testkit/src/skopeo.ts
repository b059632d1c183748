import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFile, link, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MT, type TestImage } from './images.ts';
import type { RegistryServer } from './registry.ts';
import { tmpDir } from './tmp.ts';

export const SKOPEO_BIN = '/usr/bin/skopeo';

/** Which identity skopeo uses against a registry: the push/pull user (default), the pull-only user, none, or given. */
export type SkopeoIdentity = 'rw' | 'ro' | 'anonymous' | { username: string; password: string };

export interface SkopeoOptions {
  /** Registry for the docker:// references of the command (inspect, delete, list-tags; copy/sync refs on its host). */
  registry?: RegistryServer;
  /** copy/sync: the source registry (its flags become --src-…). */
  src?: RegistryServer;
  /** copy/sync: the destination registry (its flags become --dest-…). */
  dest?: RegistryServer;
  /** Identity for every registry above (default 'rw': username/password when the registry has them). */
  as?: SkopeoIdentity;
  /** copy/sync: identity for the source only (overrides `as`). */
  srcAs?: SkopeoIdentity;
  /** copy/sync: identity for the destination only (overrides `as`). */
  destAs?: SkopeoIdentity;
  signal?: AbortSignal;
  /** Default 120 s. */
  timeoutMs?: number;
}

export interface SkopeoResult {
  stdout: string;
  stderr: string;
}

export class SkopeoError extends Error {
  readonly code = 'SKOPEO_FAILED';
  readonly exitCode: number | null;
  readonly stderr: string;
  constructor(args: string[], exitCode: number | null, stderr: string) {
    super(`skopeo ${args.join(' ')} failed (exit ${exitCode}): ${stderr.trim()}`);
    this.name = 'SkopeoError';
    this.exitCode = exitCode;
    this.stderr = stderr;
  }
}

/**
 * The flags skopeo needs to reach `reg`: --tls-verify=false for plain HTTP; --cert-dir (the test CA) and
 * --tls-verify=true for TLS; --creds for the chosen identity (or --no-creds). `prefix` is '' for
 * inspect/delete/list-tags, 'src-' or 'dest-' for copy/sync.
 */
export function skopeoRegistryFlags(
  reg: RegistryServer,
  prefix: '' | 'src-' | 'dest-' = '',
  as: SkopeoIdentity = 'rw',
): string[] {
  const flags: string[] = [];
  if (reg.mode === 'http') {
    flags.push(`--${prefix}tls-verify=false`);
  } else {
    if (!reg.certDir) throw new Error(`skopeo: registry ${reg.host} (${reg.mode}) has no certDir`);
    flags.push(`--${prefix}cert-dir`, reg.certDir, `--${prefix}tls-verify=true`);
  }
  let creds: { username: string; password: string } | undefined;
  if (typeof as === 'object') creds = as;
  else if (as === 'rw' && reg.username && reg.password)
    creds = { username: reg.username, password: reg.password };
  else if (as === 'ro') {
    if (!reg.readOnlyUsername || !reg.readOnlyPassword) {
      throw new Error(
        `skopeo: registry ${reg.host} has no read-only user (start it with readOnlyUser: true)`,
      );
    }
    creds = { username: reg.readOnlyUsername, password: reg.readOnlyPassword };
  }
  if (creds) flags.push(`--${prefix}creds`, `${creds.username}:${creds.password}`);
  else flags.push(`--${prefix}no-creds`);
  return flags;
}

function onHost(arg: string | undefined, reg: RegistryServer | undefined): boolean {
  if (!arg || !reg) return false;
  const ref = arg.startsWith('docker://') ? arg.slice('docker://'.length) : arg;
  return ref.startsWith(`${reg.host}/`);
}

/** Builds the full argument list (exported for tests and for callers that spawn skopeo themselves). */
export function skopeoArgs(args: string[], opts: SkopeoOptions = {}): string[] {
  const [sub, ...rest] = args;
  if (sub === undefined) throw new Error('skopeo: no subcommand');
  const as = opts.as ?? 'rw';
  const extra: string[] = [];
  if (sub === 'copy' || sub === 'sync') {
    // positional SRC DEST are the last two arguments
    const srcArg = rest[rest.length - 2];
    const destArg = rest[rest.length - 1];
    const src = opts.src ?? (onHost(srcArg, opts.registry) ? opts.registry : undefined);
    const dest = opts.dest ?? (onHost(destArg, opts.registry) ? opts.registry : undefined);
    if (src) extra.push(...skopeoRegistryFlags(src, 'src-', opts.srcAs ?? as));
    if (dest) extra.push(...skopeoRegistryFlags(dest, 'dest-', opts.destAs ?? as));
  } else if (opts.registry) {
    extra.push(...skopeoRegistryFlags(opts.registry, '', as));
  }
  // --insecure-policy: a fresh machine may have no /etc/containers/policy.json.
  return ['--insecure-policy', sub, ...extra, ...rest];
}

function runRaw(args: string[], opts: SkopeoOptions): Promise<{ stdout: Buffer; stderr: string }> {
  const full = skopeoArgs(args, opts);
  return new Promise((resolve, reject) => {
    execFile(
      SKOPEO_BIN,
      full,
      {
        encoding: 'buffer',
        maxBuffer: 64 * 1024 * 1024,
        timeout: opts.timeoutMs ?? 120_000,
        ...(opts.signal ? { signal: opts.signal } : {}),
        // Keep the user's auth.json out: only the flags above decide the identity.
        env: { ...process.env, REGISTRY_AUTH_FILE: '/nonexistent/lading-testkit/auth.json' },
      },
      (err, stdout, stderr) => {
        const errText = stderr.toString('utf8');
        if (err) {
          const code =
            typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null;
          // hide passwords in the message
          const shown = full.map((a, i) => (/creds$/.test(full[i - 1] ?? '') ? a.replace(/:.*/, ':***') : a));
          reject(new SkopeoError(shown, code, errText || err.message));
          return;
        }
        resolve({ stdout, stderr: errText });
      },
    );
  });
}

/**
 * Runs skopeo. With `registry` (or `src`/`dest` for copy and sync) it adds the TLS, CA and credential flags
 * that registry needs; `as` picks the identity. Rejects with SkopeoError (stderr included) on failure.
 */
export async function skopeo(args: string[], opts: SkopeoOptions = {}): Promise<SkopeoResult> {
  const { stdout, stderr } = await runRaw(args, opts);
  return { stdout: stdout.toString('utf8'), stderr };
}

/** The raw manifest bytes at docker://ref. */
export async function skopeoRawManifest(
  ref: string,
  reg: RegistryServer,
  opts: Omit<SkopeoOptions, 'registry'> = {},
): Promise<Buffer> {
  const full = ref.startsWith('docker://') ? ref : `docker://${ref}`;
  const { stdout } = await runRaw(['inspect', '--raw', full], { ...opts, registry: reg });
  return stdout;
}

/** sha256 digest of the manifest at docker://ref (ref as 'host/repo:tag', with or without 'docker://'). */
export async function skopeoDigest(
  ref: string,
  reg: RegistryServer,
  opts: Omit<SkopeoOptions, 'registry'> = {},
): Promise<string> {
  const raw = await skopeoRawManifest(ref, reg, opts);
  return 'sha256:' + createHash('sha256').update(raw).digest('hex');
}

/** Where seedRegistry puts an image: host/prefix/name:tag. */
export function seededRef(
  reg: RegistryServer,
  image: Pick<TestImage, 'name' | 'tag'>,
  prefix?: string,
): string {
  const p = prefix ? `${prefix.replace(/^\/+|\/+$/g, '')}/` : '';
  return `${reg.host}/${p}${image.name}:${image.tag}`;
}

/**
 * A skopeo source reference for `image` in the layout. OCI manifests and indexes are `oci:LAYOUT:name:tag`.
 * skopeo 1.9 (containers/image 5.23) skips index.json entries of other media types, so a Docker-typed root
 * is offered as a `dir:` view of the same blobs (hard links, or copies across file systems); call cleanup().
 */
export async function skopeoLayoutSource(
  layoutDir: string,
  image: Pick<TestImage, 'name' | 'tag' | 'digest' | 'mediaType' | 'blobs'>,
): Promise<{ ref: string; cleanup(): Promise<void> }> {
  if (image.mediaType === MT.ociManifest || image.mediaType === MT.ociIndex) {
    return { ref: `oci:${layoutDir}:${image.name}:${image.tag}`, cleanup: async () => {} };
  }
  const view = await tmpDir('lading-skopeo-dir-');
  try {
    const blob = (d: string): string => join(layoutDir, 'blobs', 'sha256', d.slice('sha256:'.length));
    const place = async (from: string, to: string): Promise<void> => {
      try {
        await link(from, to);
      } catch {
        await copyFile(from, to);
      }
    };
    await writeFile(join(view.path, 'version'), 'Directory Transport Version: 1.1\n');
    await place(blob(image.digest), join(view.path, 'manifest.json'));
    for (const d of image.blobs) {
      if (d !== image.digest) await place(blob(d), join(view.path, d.slice('sha256:'.length)));
    }
  } catch (err) {
    await view.cleanup();
    throw err;
  }
  return { ref: `dir:${view.path}`, cleanup: view.cleanup };
}

/**
 * Pushes every image from the layout into the registry with
 * `skopeo copy --all --preserve-digests oci:LAYOUT:name:tag docker://host/prefix/name:tag`
 * (Docker-typed roots through skopeoLayoutSource's dir: view).
 */
export async function seedRegistry(
  reg: RegistryServer,
  layoutDir: string,
  images: TestImage[],
  opts: { prefix?: string; signal?: AbortSignal } = {},
): Promise<void> {
  for (const image of images) {
    const source = await skopeoLayoutSource(layoutDir, image);
    try {
      await skopeo(
        [
          'copy',
          '--all',
          '--preserve-digests',
          '--retry-times',
          '2',
          source.ref,
          `docker://${seededRef(reg, image, opts.prefix)}`,
        ],
        { dest: reg, ...(opts.signal ? { signal: opts.signal } : {}) },
      );
    } finally {
      await source.cleanup();
    }
  }
}
