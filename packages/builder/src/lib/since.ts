import type { KeyObject } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import {
  type Descriptor,
  type Digest,
  digestOf,
  digestOfBlobMember,
  fetchAll,
  InvalidInputError,
  type LadingJson,
  Member,
  manifestChildren,
  type OciLayout,
  openBundle,
  parseLadingJson,
  parseSums,
  walkDescriptors,
} from '@lading/core';
import { baseProblems } from './base-check.ts';

/** The base of a differential bundle (`--since OLD`): what the site already has. */
export interface BaseBundle {
  name: string;
  version: string;
  /** sha256 of OLD's SHA256SUMS member. */
  sumsDigest: Digest;
  /** Blobs the site holds after loading OLD (its blobs plus what OLD itself left out). */
  blobs: Set<string>;
  /** How the blob list was learnt: from the bundle's members, or from lading.json + the cache. */
  from: 'bundle' | 'lading.json';
  /** What does not check out in it (no blob hashed; see base-check.ts): create warns with these. */
  problems: string[];
}

function sumsMap(bytes: Buffer, source: string): Map<string, string> {
  try {
    return new Map(parseSums(bytes, source).map((e) => [e.path, e.hex]));
  } catch (err) {
    throw new BaseBundleError(`--since ${source}: ${(err as Error).message}`, { cause: err });
  }
}

export class BaseBundleError extends InvalidInputError {
  override readonly code = 'SINCE_INVALID';
}

/**
 * Read OLD: a bundle (tar, first part, directory) — its blobs are its members — or its
 * lading.json, in which case SHA256SUMS must lie beside it (an extracted bundle) and the blobs are
 * the graphs of its images and charts as found in the content cache (roots not in the cache are
 * simply not left out: the new bundle is then bigger, never incomplete).
 */
export async function loadBaseBundle(
  path: string,
  cache?: OciLayout,
  signal?: AbortSignal,
  /** The build's signing key: the base's signature is checked against its public half. */
  key?: KeyObject,
): Promise<BaseBundle> {
  const st = await stat(path).catch(() => undefined);
  if (!st) {
    throw new BaseBundleError(`--since ${path}: no such file or folder`, {
      hint: 'give the previous bundle (.tar, its first part .tar.000, its folder) or its lading.json',
    });
  }
  if (st.isFile() && basename(path).endsWith('.json')) {
    const text = await readFile(path);
    let lading: LadingJson;
    try {
      lading = parseLadingJson(text);
    } catch (err) {
      throw new BaseBundleError(`--since ${path}: not a bundle's lading.json: ${(err as Error).message}`, {
        cause: err,
      });
    }
    const sumsPath = join(dirname(path), Member.sums);
    const sums = await readFile(sumsPath).catch(() => undefined);
    if (!sums) {
      throw new BaseBundleError(`--since ${path}: ${sumsPath} is missing beside it`, {
        hint: 'a differential bundle names its base by the digest of the base SHA256SUMS: give the bundle itself, or extract lading.json and SHA256SUMS together',
      });
    }
    const blobs = new Set<string>(lading.since?.omittedBlobs ?? []);
    if (cache) {
      const roots = [
        ...lading.images.map((i) => ({ digest: i.digest, mediaType: i.mediaType })),
        ...lading.charts.map((c) => ({
          digest: c.digest,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
        })),
      ];
      for (const r of roots) {
        const st2 = await stat(cache.blobPath(r.digest as Digest)).catch(() => undefined);
        if (!st2) continue;
        const nodes = await graphIn(cache, { ...r, size: st2.size }, signal).catch(() => []);
        for (const n of nodes) blobs.add(n);
      }
    }
    const signature = await readFile(join(dirname(path), Member.signature)).catch(() => undefined);
    return {
      name: lading.name,
      version: lading.version,
      sumsDigest: digestOf(sums),
      blobs,
      from: 'lading.json',
      problems: baseProblems(
        { sums: sumsMap(sums, sumsPath), sumsBytes: sums, signature, metadata: [[Member.manifest, text]] },
        key,
      ),
    };
  }
  const bundle = await openBundle(path, signal ? { signal } : {});
  try {
    const blobs = new Set<string>(bundle.ladingJson.since?.omittedBlobs ?? []);
    for (const name of bundle.members.keys()) {
      const d = digestOfBlobMember(name);
      if (d) blobs.add(d);
    }
    const metadata: Array<[string, Buffer]> = [];
    for (const m of [Member.manifest, Member.index]) metadata.push([m, await bundle.readMember(m)]);
    return {
      name: bundle.ladingJson.name,
      version: bundle.ladingJson.version,
      sumsDigest: digestOf(bundle.sumsBytes),
      blobs,
      from: 'bundle',
      problems: baseProblems(
        {
          sums: bundle.sums,
          sumsBytes: bundle.sumsBytes,
          signature: bundle.signature,
          metadata,
          members: bundle.members.keys(),
        },
        key,
      ),
    };
  } finally {
    await bundle.close();
  }
}

/**
 * The digests of every node under `root` in the cache (the root, its manifests, configs and
 * layers), through the one walk; a manifest missing from the cache or not matching its digest
 * fails the whole graph (the caller then leaves nothing of it out).
 */
async function graphIn(cache: OciLayout, root: Descriptor, signal?: AbortSignal): Promise<string[]> {
  const nodes: string[] = [];
  const read = (d: Descriptor) => fetchAll(cache, d, { source: d.digest, ...(signal ? { signal } : {}) });
  await walkDescriptors([root], manifestChildren(read), {
    enter: (d) => {
      nodes.push(d.digest);
      return true;
    },
    ...(signal ? { signal } : {}),
  });
  return nodes;
}
