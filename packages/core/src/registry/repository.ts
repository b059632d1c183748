import { PassThrough, type Readable } from 'node:stream';
import type { CallOptions, Mounter, ReferencePusher, TagLister, Target } from '../content/index.ts';
import {
  type Digest,
  DigestMismatchError,
  digestOf,
  isDigest,
  parseDigest,
  SizeMismatchError,
} from '../digest/index.ts';
import { InvalidInputError } from '../errors/index.ts';
import {
  ALL_MANIFEST_MEDIA_TYPES,
  type Descriptor,
  isManifestOrIndexType,
  MAX_MANIFEST_BYTES,
  MediaType,
  parseManifest,
} from '../model/index.ts';
import { repositoryScope } from './auth/scope.ts';
import type { RegistryClient, Response } from './client.ts';
import { errorFromNetwork, RegistryError, RegistryProtocolError } from './errors.ts';
import { nextLink } from './pagination.ts';
import { BlobUpload, type UploadOptions } from './upload.ts';

/**
 * One repository of a registry as a content Target (Distribution API v2): manifests by tag and
 * digest, blobs streamed, HEAD existence, monolithic and chunked uploads that verify before they
 * commit, cross-repository mount, and tag listing.
 */
export interface RepositoryOptions extends UploadOptions {
  /** `n` for tag list pages (default: let the registry decide). */
  tagPageSize?: number;
}

export class InvalidRepositoryNameError extends InvalidInputError {
  override readonly code = 'INVALID_REPOSITORY';
}

export class InvalidTagError extends InvalidInputError {
  override readonly code = 'INVALID_TAG';
}

const PATH_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*';
const REPOSITORY_RE = new RegExp(`^${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`);
const TAG_RE = /^[\w][\w.-]{0,127}$/;

export function checkRepositoryName(name: string): string {
  if (!REPOSITORY_RE.test(name) || name.length > 255) {
    throw new InvalidRepositoryNameError(`invalid repository name "${name}"`, {
      hint: 'a repository is lowercase path components separated by "/", e.g. library/nginx',
    });
  }
  return name;
}

/** A tag or a digest: what goes after /manifests/. */
export function checkReference(ref: string): string {
  if (isDigest(ref) || TAG_RE.test(ref)) return ref;
  if (/^[a-z0-9]+:/.test(ref)) parseDigest(ref); // throws InvalidDigestError with the reason
  throw new InvalidTagError(`invalid tag "${ref}"`, {
    hint: 'a tag is up to 128 letters, digits, "_", "." and "-", not starting with "." or "-"',
  });
}

function mediaTypeOf(res: Response): string | undefined {
  const ct = res.header('content-type');
  return ct ? ct.split(';')[0]!.trim() : undefined;
}

/** Minimal structural surface of a Registry the repository needs (avoids an import cycle). */
export interface RegistryLike {
  readonly host: string;
  readonly client: RegistryClient;
}

export class RegistryRepository implements Target, Mounter, TagLister, ReferencePusher {
  readonly registry: RegistryLike;
  readonly name: string;
  readonly options: RepositoryOptions;

  constructor(registry: RegistryLike, name: string, options: RepositoryOptions = {}) {
    this.registry = registry;
    this.name = checkRepositoryName(name);
    this.options = options;
  }

  get client(): RegistryClient {
    return this.registry.client;
  }

  /** `host/name`, as in an image reference. */
  get reference(): string {
    return `${this.registry.host}/${this.name}`;
  }

  private get pull(): string[] {
    return [repositoryScope(this.name, ['pull'])];
  }

  private get pushPull(): string[] {
    return [repositoryScope(this.name, ['pull', 'push'])];
  }

  private path(kind: 'manifests' | 'blobs', ref: string): string {
    return `/v2/${this.name}/${kind}/${ref}`;
  }

  /**
   * Resolve a tag or digest to the descriptor of the manifest or index it names: HEAD with an
   * Accept for OCI + Docker index and manifest types; GET when HEAD lacks Docker-Content-Digest.
   */
  async resolve(reference: string, opts: CallOptions = {}): Promise<Descriptor> {
    const ref = checkReference(reference);
    const res = await this.client.send({
      method: 'HEAD',
      path: this.path('manifests', ref),
      headers: { accept: ALL_MANIFEST_MEDIA_TYPES.join(', ') },
      scopes: this.pull,
      kind: 'manifest',
      repository: this.name,
      ref,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    await res.body.dump();
    const digest = res.header('docker-content-digest');
    const mediaType = mediaTypeOf(res);
    const length = res.header('content-length');
    if (digest && isDigest(digest) && mediaType && isManifestOrIndexType(mediaType) && length !== undefined) {
      if (isDigest(ref) && digest !== ref && parseDigest(digest).algorithm === parseDigest(ref).algorithm) {
        throw new DigestMismatchError(ref, digest, `${this.reference}@${ref}`);
      }
      return { mediaType, digest: isDigest(ref) ? ref : digest, size: Number(length) };
    }
    return (await this.getManifest(ref, opts)).descriptor;
  }

  /**
   * GET a manifest by tag or digest, read whole (at most 4 MiB) and verified: when `ref` is a
   * digest the bytes must hash to it; for a tag they must match the registry's
   * Docker-Content-Digest when it sends one.
   */
  async getManifest(
    reference: string,
    opts: CallOptions = {},
  ): Promise<{ descriptor: Descriptor; bytes: Buffer }> {
    const ref = checkReference(reference);
    const res = await this.client.send({
      method: 'GET',
      path: this.path('manifests', ref),
      headers: { accept: ALL_MANIFEST_MEDIA_TYPES.join(', ') },
      scopes: this.pull,
      kind: 'manifest',
      repository: this.name,
      ref,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    const bytes = await this.readManifestBody(res, ref);
    const source = `${this.reference}${isDigest(ref) ? '@' : ':'}${ref}`;
    const algorithm = isDigest(ref) ? parseDigest(ref).algorithm : 'sha256';
    const actual = digestOf(bytes, algorithm);
    if (isDigest(ref) && actual !== ref) throw new DigestMismatchError(ref, actual, source);
    const header = res.header('docker-content-digest');
    if (
      !isDigest(ref) &&
      header &&
      isDigest(header) &&
      parseDigest(header).algorithm === algorithm &&
      header !== actual
    ) {
      throw new DigestMismatchError(header as Digest, actual, source);
    }
    let mediaType = mediaTypeOf(res);
    if (!mediaType || !isManifestOrIndexType(mediaType)) {
      mediaType = parseManifest(bytes, undefined, source).mediaType;
    }
    return { descriptor: { mediaType, digest: actual, size: bytes.length }, bytes };
  }

  private async readManifestBody(res: Response, ref: string): Promise<Buffer> {
    const length = res.header('content-length');
    if (length !== undefined && Number(length) > MAX_MANIFEST_BYTES) {
      res.body.destroy();
      throw new RegistryProtocolError(
        `manifest is ${length} bytes, more than ${MAX_MANIFEST_BYTES} allowed`,
        {
          registry: this.registry.host,
          repository: this.name,
          ref,
        },
      );
    }
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const c of res.body as AsyncIterable<Buffer>) {
      n += c.length;
      if (n > MAX_MANIFEST_BYTES) {
        res.body.destroy();
        throw new RegistryProtocolError(`manifest is more than ${MAX_MANIFEST_BYTES} bytes`, {
          registry: this.registry.host,
          repository: this.name,
          ref,
        });
      }
      chunks.push(c);
    }
    return Buffer.concat(chunks);
  }

  /**
   * Stream content by descriptor: manifests and indexes from /manifests/, everything else from
   * /blobs/ (redirects followed). The stream is raw; wrap it with `fetchVerified`. Fails early
   * when the registry announces another size or digest than the descriptor.
   */
  async fetch(desc: Descriptor, opts: CallOptions = {}): Promise<Readable> {
    return this.get(desc, undefined, opts);
  }

  /** Stream bytes [start, end] (inclusive; end defaults to the last byte) of a blob. */
  async fetchRange(desc: Descriptor, start: number, end?: number, opts: CallOptions = {}): Promise<Readable> {
    const last = end ?? desc.size - 1;
    if (start < 0 || start > last || last >= desc.size) {
      throw new InvalidInputError(`invalid range ${start}-${last} of ${desc.digest} (${desc.size} bytes)`);
    }
    return this.get(desc, { start, end: last }, opts);
  }

  private async get(
    desc: Descriptor,
    range: { start: number; end: number } | undefined,
    opts: CallOptions,
  ): Promise<Readable> {
    const manifest = isManifestOrIndexType(desc.mediaType);
    const headers: Record<string, string> = {};
    if (manifest)
      headers.accept = [desc.mediaType, ...ALL_MANIFEST_MEDIA_TYPES.filter((t) => t !== desc.mediaType)].join(
        ', ',
      );
    if (range) headers.range = `bytes=${range.start}-${range.end}`;
    const res = await this.client.send({
      method: 'GET',
      path: this.path(manifest ? 'manifests' : 'blobs', desc.digest),
      headers,
      scopes: this.pull,
      kind: manifest ? 'manifest' : 'blob',
      repository: this.name,
      ref: desc.digest,
      expect: range ? [206, 200] : [200],
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    const source = `${this.reference}@${desc.digest}`;
    if (range && res.status === 200) {
      res.body.destroy();
      throw new RegistryError('the registry does not support Range requests for this blob', {
        registry: this.registry.host,
        repository: this.name,
        ref: desc.digest,
        status: 200,
      });
    }
    const length = res.header('content-length');
    const want = range ? range.end - range.start + 1 : desc.size;
    if (length !== undefined && /^\d+$/.test(length) && Number(length) !== want) {
      res.body.destroy();
      if (range) {
        throw new RegistryProtocolError(
          `the registry sent ${length} bytes for range ${range.start}-${range.end}`,
          {
            registry: this.registry.host,
            repository: this.name,
            ref: desc.digest,
          },
        );
      }
      throw new SizeMismatchError(desc.digest, desc.size, Number(length), source, false);
    }
    const header = res.header('docker-content-digest');
    if (
      !range &&
      header &&
      isDigest(header) &&
      parseDigest(header).algorithm === parseDigest(desc.digest).algorithm &&
      header !== desc.digest
    ) {
      res.body.destroy();
      throw new DigestMismatchError(desc.digest, header, source);
    }
    // Map failures while the body streams (timeouts, resets, aborts) to typed errors. (Node's
    // default buffer: a larger one makes async iteration return buffered chunks concatenated,
    // one more copy of every byte.)
    const out = new PassThrough();
    const ctx = { registry: this.registry.host, repository: this.name, ref: desc.digest };
    res.body.on('error', (err) => out.destroy(errorFromNetwork(err, ctx, opts.signal)));
    out.on('close', () => {
      if (!res.body.destroyed) res.body.destroy();
    });
    res.body.pipe(out);
    return out;
  }

  /** HEAD the blob or manifest: true when present, false on 404. */
  async exists(desc: Descriptor, opts: CallOptions = {}): Promise<boolean> {
    const manifest = isManifestOrIndexType(desc.mediaType);
    const res = await this.client.send({
      method: 'HEAD',
      path: this.path(manifest ? 'manifests' : 'blobs', desc.digest),
      headers: manifest ? { accept: [desc.mediaType, ...ALL_MANIFEST_MEDIA_TYPES].join(', ') } : {},
      scopes: this.pull,
      kind: manifest ? 'manifest' : 'blob',
      repository: this.name,
      ref: desc.digest,
      expect: [200, 404],
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    await res.body.dump();
    return res.status === 200;
  }

  /**
   * Push content. Blobs stream through a VerifyingStream into an upload session that is only
   * committed when the bytes match (monolithic, or chunked above `chunkSize`); manifests are
   * read whole (at most 4 MiB), verified, and PUT by digest with their media type.
   */
  async push(desc: Descriptor, content: Readable, opts: CallOptions = {}): Promise<void> {
    if (isManifestOrIndexType(desc.mediaType)) {
      await this.putManifest(desc, content, desc.digest, opts);
      return;
    }
    await this.upload().push(desc, content, {
      ...(this.options.chunkSize ? { chunkSize: this.options.chunkSize } : {}),
      ...(this.options.mode ? { mode: this.options.mode } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  }

  /** Upload sessions in this repository; a closing PUT that lost its answer is settled by `exists`. */
  private upload(): BlobUpload {
    return new BlobUpload(this.client, this.name, (desc, signal) =>
      this.exists(desc, signal ? { signal } : {}),
    );
  }

  /** Push a manifest and tag it in one request. */
  async pushReference(
    desc: Descriptor,
    content: Readable,
    reference: string,
    opts: CallOptions = {},
  ): Promise<void> {
    await this.putManifest(desc, content, checkReference(reference), opts);
  }

  /** Tag a manifest already in the repository: fetch it by digest and PUT it under the tag. */
  async tag(desc: Descriptor, reference: string, opts: CallOptions = {}): Promise<void> {
    const ref = checkReference(reference);
    const { descriptor, bytes } = await this.getManifest(desc.digest, opts);
    if (descriptor.size !== desc.size) {
      throw new SizeMismatchError(
        desc.digest,
        desc.size,
        descriptor.size,
        `${this.reference}@${desc.digest}`,
        false,
      );
    }
    await this.putBytes({ ...desc, mediaType: desc.mediaType || descriptor.mediaType }, bytes, ref, opts);
  }

  private async putManifest(
    desc: Descriptor,
    content: Readable,
    ref: string,
    opts: CallOptions,
  ): Promise<void> {
    const source = `${this.reference}@${desc.digest}`;
    if (desc.size > MAX_MANIFEST_BYTES) {
      content.destroy();
      throw new InvalidInputError(
        `${source}: manifest of ${desc.size} bytes is larger than ${MAX_MANIFEST_BYTES}`,
        {
          hint: 'registries refuse manifests over 4 MiB',
        },
      );
    }
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const c of content as AsyncIterable<Buffer>) {
      n += c.length;
      if (n > desc.size) {
        content.destroy();
        throw new SizeMismatchError(desc.digest, desc.size, n, source, true);
      }
      chunks.push(Buffer.from(c));
    }
    const bytes = Buffer.concat(chunks);
    if (bytes.length !== desc.size)
      throw new SizeMismatchError(desc.digest, desc.size, bytes.length, source, false);
    const actual = digestOf(bytes, parseDigest(desc.digest).algorithm);
    if (actual !== desc.digest) throw new DigestMismatchError(desc.digest, actual, source);
    await this.putBytes(desc, bytes, ref, opts);
  }

  private async putBytes(desc: Descriptor, bytes: Buffer, ref: string, opts: CallOptions): Promise<void> {
    const res = await this.client.send({
      method: 'PUT',
      path: this.path('manifests', ref),
      headers: { 'content-type': desc.mediaType },
      body: bytes,
      scopes: this.pushPull,
      kind: 'manifest',
      repository: this.name,
      ref,
      expect: [201, 200],
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    await res.body.dump();
    const got = res.header('docker-content-digest');
    if (
      got &&
      isDigest(got) &&
      parseDigest(got).algorithm === parseDigest(desc.digest).algorithm &&
      got !== desc.digest
    ) {
      throw new RegistryProtocolError(`the registry stored the manifest as ${got}, expected ${desc.digest}`, {
        registry: this.registry.host,
        repository: this.name,
        ref,
      });
    }
  }

  /**
   * Cross-repository mount: make `desc` (a blob in `fromRepository` of the same registry)
   * appear here without moving bytes. 201 → true; 202 (the registry opened an ordinary upload
   * instead) → the session is cancelled and false is returned.
   */
  async mount(desc: Descriptor, fromRepository: string, opts: CallOptions = {}): Promise<boolean> {
    const from = checkRepositoryName(fromRepository);
    const path = `/v2/${this.name}/blobs/uploads/`;
    const res = await this.client.send({
      method: 'POST',
      path,
      query: { mount: desc.digest, from },
      headers: { 'content-length': '0' },
      body: Buffer.alloc(0),
      scopes: [...this.pushPull, repositoryScope(from, ['pull'])],
      kind: 'upload',
      repository: this.name,
      ref: desc.digest,
      expect: [201, 202],
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    await res.body.dump();
    if (res.status === 201) return true;
    const loc = res.header('location');
    if (loc) await this.upload().cancel(new URL(loc, this.client.url(path)));
    return false;
  }

  /**
   * OCI 1.1 referrers API: the descriptors of the manifests whose `subject` is `digest`
   * (`GET /v2/<name>/referrers/<digest>`). `undefined` when the registry has no such API (404
   * without an OCI index, as Distribution 2.8 answers): the caller falls back to the referrers tag
   * schema. At most 4 MiB of index is read.
   */
  async referrers(digest: Digest, opts: CallOptions = {}): Promise<Descriptor[] | undefined> {
    parseDigest(digest);
    const res = await this.client.send({
      method: 'GET',
      path: `/v2/${this.name}/referrers/${digest}`,
      headers: { accept: MediaType.ociIndex },
      scopes: this.pull,
      kind: 'manifest',
      repository: this.name,
      ref: digest,
      expect: [200, 404],
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    if (res.status === 404 || !(mediaTypeOf(res) ?? '').includes('json')) {
      await res.body.dump();
      return undefined;
    }
    const bytes = await this.readManifestBody(res, digest);
    const parsed = parseManifest(bytes, MediaType.ociIndex, `${this.reference} referrers of ${digest}`);
    if (parsed.kind !== 'index') return undefined;
    return parsed.index.manifests;
  }

  /** Tags of the repository, following Link pagination. */
  async *tags(opts: CallOptions & { pageSize?: number } = {}): AsyncIterable<string> {
    const n = opts.pageSize ?? this.options.tagPageSize;
    let url: URL | undefined = this.client.url(`/v2/${this.name}/tags/list`, n ? { n } : undefined);
    while (url) {
      const res: Response = await this.client.send({
        method: 'GET',
        path: url,
        headers: { accept: 'application/json' },
        scopes: this.pull,
        kind: 'tags',
        repository: this.name,
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
      const json = (await res.body.json()) as { tags?: unknown };
      const tags = Array.isArray(json.tags)
        ? json.tags.filter((t): t is string => typeof t === 'string')
        : [];
      for (const t of tags) yield t;
      const next = nextLink(res.headers.link, url);
      url = next && tags.length > 0 ? next : undefined;
    }
  }

  /** Delete a manifest by digest (the registry must allow deletes). */
  async deleteManifest(target: Descriptor | Digest, opts: CallOptions = {}): Promise<void> {
    const digest = typeof target === 'string' ? target : target.digest;
    parseDigest(digest);
    try {
      const res = await this.client.send({
        method: 'DELETE',
        path: this.path('manifests', digest),
        scopes: [repositoryScope(this.name, ['delete', 'pull', 'push'])],
        kind: 'manifest',
        repository: this.name,
        ref: digest,
        expect: [202, 200, 204],
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
      await res.body.dump();
    } catch (err) {
      if (err instanceof RegistryError && err.status === 405) {
        throw new RegistryError('the registry does not allow deleting manifests', {
          registry: this.registry.host,
          repository: this.name,
          ref: digest,
          status: 405,
          errors: err.errors,
          hint: 'enable deletes on the registry (Distribution: storage.delete.enabled: true)',
        });
      }
      throw err;
    }
  }
}
