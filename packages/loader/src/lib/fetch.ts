import { createHash, randomBytes } from 'node:crypto';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import {
  type FetchProgress,
  fetchObject,
  formatS3Url,
  headObjectIfExists,
  InvalidInputError,
  Limiter,
  parsePartName,
  parseS3Url,
  parseSums,
  partsChecksumSignatureName,
  S3ChecksumError,
  type S3Client,
  S3NotFoundError,
  type S3Url,
  STANDALONE_LOADER_NAME,
  syncDir,
  writeFileAtomic,
} from '@lading/core';
import { readSmallObject, s3ClientFor, splitBaseKey } from './s3.ts';

/**
 * `lading-load fetch`: download a bundle from S3 with parallel ranged GETs, verified as it comes
 * (fetchObject: sha256 against the object's `lading-sha256` metadata, or for the parts of a split
 * bundle against `NAME.tar.sha256`). Everything is downloaded into a temporary folder beside the
 * output and renamed into place only when every file is complete and verified: on failure nothing
 * is left at the output.
 */

export interface FetchedFile {
  url: string;
  key: string;
  /** Where the file now is. */
  output: string;
  size: number;
  sha256: string;
  /** `parts-file` (NAME.tar.sha256), `metadata` (publish's lading-sha256), `none`, or `-` for the parts file and its signature. */
  verifiedAgainst: 'parts-file' | 'metadata' | 'none' | '-';
}

export interface FetchBundleResult {
  url: string;
  bucket: string;
  /** Whether the bundle is split into parts. */
  split: boolean;
  /** What to give `lading-load verify` / `push`: the bundle file, or the first part. */
  bundle: string;
  files: FetchedFile[];
  /** Bytes downloaded (all files). */
  size: number;
  durationMs: number;
}

export interface FetchBundleOptions {
  endpoint?: string | undefined;
  region?: string | undefined;
  /** Use this client instead of building one (tests); it is not destroyed. */
  client?: S3Client | undefined;
  /** Parallel ranged GETs (default 4). */
  concurrency?: number | undefined;
  /** Bytes per ranged GET (default: fetchObject's 16 MiB). */
  partSize?: number | undefined;
  signal?: AbortSignal | undefined;
  /** Per file: its key, its bytes so far and its size; files finished (this one once it is). */
  onProgress?: (p: {
    key: string;
    bytesDone: number;
    bytesTotal: number;
    filesDone: number;
    filesTotal: number;
  }) => void;
}

async function isDirectory(p: string): Promise<boolean> {
  return stat(p)
    .then((s) => s.isDirectory())
    .catch(() => false);
}

/**
 * Where the files go: `output` as the file itself (unsplit), or the folder of the parts — which
 * keep their names, since NAME.tar.sha256 lists them by name. `output` may be an existing folder.
 */
async function placeOutput(
  output: string,
  names: { single?: string; parts?: { first: string; base: string } },
): Promise<{ dir: string; fileName(name: string): string }> {
  const out = resolve(output);
  if (await isDirectory(out)) return { dir: out, fileName: (n) => n };
  const dir = dirname(out);
  if (!(await isDirectory(dir))) {
    throw new InvalidInputError(`cannot write ${output}: the folder ${dir} does not exist`, {
      hint: 'create the folder first, or give --output an existing folder',
    });
  }
  if (names.parts) {
    const b = basename(out);
    if (b !== names.parts.first && b !== names.parts.base) {
      throw new InvalidInputError(
        `${output}: a split bundle's parts keep their names (${names.parts.base}.000, … and ${names.parts.base}.sha256), so --output must be a folder or ${names.parts.first}`,
        { hint: `give --output an existing folder, e.g. --output ${dir}` },
      );
    }
    return { dir, fileName: (n) => n };
  }
  return { dir, fileName: () => basename(out) };
}

/** Download `s3://bucket/key` (a bundle, or a split bundle's first part / base name) to `output`. */
export async function fetchBundle(
  src: string,
  output: string,
  opts: FetchBundleOptions = {},
): Promise<FetchBundleResult> {
  const started = Date.now();
  const url = parseS3Url(src, { requireKey: true });
  const concurrency = opts.concurrency ?? 4;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) {
    throw new InvalidInputError(`invalid --concurrency ${concurrency}`, {
      hint: 'give a whole number from 1 to 64',
    });
  }
  const { client, release } = await s3ClientFor(opts);
  const so = opts.signal ? { signal: opts.signal } : {};
  try {
    // Which objects: the key itself, or the parts of a split bundle.
    let base = splitBaseKey(url.key);
    if (base !== undefined && !url.key.endsWith('.000')) {
      throw new InvalidInputError(`${src} is not the first part of a split bundle`, {
        hint: `give s3://${url.bucket}/${base}.000 (or s3://${url.bucket}/${base})`,
      });
    }
    if (base === undefined) {
      const head = await headObjectIfExists(client, url, so);
      if (!head) {
        const first = { bucket: url.bucket, key: `${url.key}.000` };
        if (await headObjectIfExists(client, first, so)) base = url.key;
        else throw new S3NotFoundError(url, 'no such object (nor a split bundle KEY.000)');
      }
    }

    const limiter = new Limiter(concurrency);
    const files: Array<{ url: S3Url; name: string; expected?: string }> = [];
    let sumsText: Buffer | undefined;
    let sumsUrl: S3Url | undefined;
    let sigText: Buffer | undefined;
    let sigUrl: S3Url | undefined;
    if (base === undefined) {
      files.push({ url, name: basename(url.key) });
    } else {
      sumsUrl = { bucket: url.bucket, key: `${base}.sha256` };
      sumsText = await readSmallObject(client, sumsUrl, so);
      if (!sumsText) {
        throw new S3NotFoundError(
          sumsUrl,
          'the parts checksum file of the split bundle is missing; the parts cannot be verified',
        );
      }
      let entries: ReturnType<typeof parseSums>;
      try {
        entries = parseSums(sumsText, formatS3Url(sumsUrl));
      } catch (err) {
        throw new S3ChecksumError(sumsUrl, `is not a parts checksum file: ${(err as Error).message}`, err);
      }
      const dirKey = base.includes('/') ? base.slice(0, base.lastIndexOf('/') + 1) : '';
      // The file is not trusted yet (its signature is checked by verify): it may name only this
      // bundle's parts and its standalone loader — never release.pub or anything else beside them.
      const stem = basename(base);
      const isPart = (p: string) => parsePartName(p)?.base === stem;
      for (const e of entries) {
        if (!isPart(e.path) && e.path !== STANDALONE_LOADER_NAME) {
          throw new S3ChecksumError(
            sumsUrl,
            `lists "${e.path}", which is neither a part of ${stem} (${stem}.000, …) nor its loader (${STANDALONE_LOADER_NAME}); nothing was downloaded`,
          );
        }
        files.push({ url: { bucket: url.bucket, key: dirKey + e.path }, name: e.path, expected: e.hex });
      }
      if (!files.some((f) => isPart(f.name))) throw new S3ChecksumError(sumsUrl, 'lists no parts');
      sigUrl = { bucket: url.bucket, key: partsChecksumSignatureName(sumsUrl.key) };
      sigText = await readSmallObject(client, sigUrl, so);
    }

    const baseName = base === undefined ? undefined : basename(base);
    const place = await placeOutput(
      output,
      baseName === undefined
        ? { single: basename(url.key) }
        : { parts: { first: `${baseName}.000`, base: baseName } },
    );
    const staging = join(place.dir, `.lading-fetch-${randomBytes(6).toString('hex')}`);
    try {
      await mkdir(staging);
    } catch (err) {
      throw new InvalidInputError(`cannot write in ${place.dir}: ${(err as Error).message}`, { cause: err });
    }
    try {
      const fetched: FetchedFile[] = [];
      for (const f of files) {
        const r = await fetchObject(f.url, join(staging, f.name), {
          client,
          limiter,
          ...(opts.partSize ? { partSize: opts.partSize } : {}),
          ...(f.expected ? { expectedSha256: f.expected } : {}),
          ...so,
          onProgress: (p: FetchProgress) =>
            opts.onProgress?.({
              key: p.key,
              bytesDone: p.bytesDone,
              bytesTotal: p.bytesTotal,
              filesDone: fetched.length,
              filesTotal: files.length,
            }),
        });
        // The file is in and checked: its bar ends at its size, counting it.
        opts.onProgress?.({
          key: r.key,
          bytesDone: r.size,
          bytesTotal: r.size,
          filesDone: fetched.length + 1,
          filesTotal: files.length,
        });
        fetched.push({
          url: r.url,
          key: r.key,
          output: join(place.dir, place.fileName(f.name)),
          size: r.size,
          sha256: r.sha256,
          verifiedAgainst: r.verifiedAgainst === 'expected' ? 'parts-file' : r.verifiedAgainst,
        });
      }
      if (sumsText && sumsUrl) {
        const name = basename(sumsUrl.key);
        await writeFileAtomic(join(staging, name), sumsText);
        fetched.push({
          url: formatS3Url(sumsUrl),
          key: sumsUrl.key,
          output: join(place.dir, name),
          size: sumsText.length,
          sha256: createHash('sha256').update(sumsText).digest('hex'),
          verifiedAgainst: '-',
        });
      }
      if (sigText && sigUrl) {
        const name = basename(sigUrl.key);
        await writeFileAtomic(join(staging, name), sigText);
        fetched.push({
          url: formatS3Url(sigUrl),
          key: sigUrl.key,
          output: join(place.dir, name),
          size: sigText.length,
          sha256: createHash('sha256').update(sigText).digest('hex'),
          verifiedAgainst: '-',
        });
      }
      // Everything is complete and verified: move it into place (parts first, the parts file last).
      for (const f of fetched) await rename(join(staging, basename(f.key)), f.output);
      await syncDir(place.dir);
      return {
        url: formatS3Url(url),
        bucket: url.bucket,
        split: base !== undefined,
        bundle: fetched[0]!.output,
        files: fetched,
        size: fetched.reduce((n, f) => n + f.size, 0),
        durationMs: Date.now() - started,
      };
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  } finally {
    release();
  }
}
