import type { Readable } from 'node:stream';
import type { Descriptor } from '../model/index.ts';

/**
 * The small interfaces every store implements (modelled on oras-go's content package).
 * A registry repository, an OCI layout, a bundle and an HTTP server all meet here, so one copy
 * engine serves every direction. Every call takes an AbortSignal.
 */

export interface CallOptions {
  signal?: AbortSignal;
}

/** Reads content by descriptor. The stream is raw; callers verify it (see `fetchVerified`). */
export interface Fetcher {
  fetch(desc: Descriptor, opts?: CallOptions): Promise<Readable>;
}

/**
 * Writes content by descriptor. A Pusher must verify the digest and size while the bytes flow
 * and must not make content visible unless it verified.
 */
export interface Pusher {
  push(desc: Descriptor, content: Readable, opts?: CallOptions): Promise<void>;
}

/** Answers whether content is present. */
export interface Exister {
  exists(desc: Descriptor, opts?: CallOptions): Promise<boolean>;
}

export interface ReadOnlyStorage extends Fetcher, Exister {}
export interface Storage extends ReadOnlyStorage, Pusher {}

/** Turns a tag (or digest) into the descriptor of the root node. */
export interface Resolver {
  resolve(reference: string, opts?: CallOptions): Promise<Descriptor>;
}

/** Gives a node a tag. */
export interface Tagger {
  tag(desc: Descriptor, reference: string, opts?: CallOptions): Promise<void>;
}

export interface ReadOnlyTarget extends ReadOnlyStorage, Resolver {}
export interface Target extends Storage, Resolver, Tagger {}

/** Optional: lists tags (registries, layouts, bundles). */
export interface TagLister {
  tags(opts?: CallOptions): AsyncIterable<string>;
}

/**
 * Optional fast path (cross-repository blob mount): make a blob that exists in another
 * repository of the same registry appear here without moving bytes. Returns false when the
 * registry declined (the caller then pushes normally).
 */
export interface Mounter {
  mount(desc: Descriptor, fromRepository: string, opts?: CallOptions): Promise<boolean>;
}

/**
 * Optional: pushes a manifest under a tag in one request (registries), instead of push + tag.
 */
export interface ReferencePusher {
  pushReference(desc: Descriptor, content: Readable, reference: string, opts?: CallOptions): Promise<void>;
}

/**
 * Optional, for a source that has more than one place for a blob (a cache, an earlier bundle, a
 * registry): `reject` drops the place that served bytes the destination refused (size or digest)
 * and says whether another place remains; the copy then fetches the blob again from there.
 */
export interface Rejecter {
  reject(desc: Descriptor): boolean;
}

export function isRejecter(x: unknown): x is Rejecter {
  return typeof (x as Partial<Rejecter>)?.reject === 'function';
}

export function isMounter(x: unknown): x is Mounter {
  return typeof (x as Partial<Mounter>)?.mount === 'function';
}

export function isTagLister(x: unknown): x is TagLister {
  return typeof (x as Partial<TagLister>)?.tags === 'function';
}

export function isReferencePusher(x: unknown): x is ReferencePusher {
  return typeof (x as Partial<ReferencePusher>)?.pushReference === 'function';
}
