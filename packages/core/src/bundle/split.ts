import type { KeyObject } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Digest } from '../digest/index.ts';
import { AbortedError, InvalidInputError, throwIfAborted } from '../errors/index.ts';
import { OutputExistsError, outputFile } from '../util/atomic-file.ts';
import { WRITE_CHUNK } from '../util/index.ts';
import { PlacedOutput } from './placed-output.ts';
import { parseSize } from './size.ts';

/**
 * Bundle output options and `splitBundle`. Outputs are written atomically (PlacedOutput): bytes go
 * to temporary names in the output folder (`.<name>.tmp-<pid>-<random>`), are fsynced, and are
 * renamed into place only by `commit()`; nothing ever appears at the output path before. With
 * `splitSize` the output is `NAME.000`, `NAME.001`, … plus `NAME.sha256` (coreutils format over
 * the part file names).
 */

export { OutputExistsError };

export interface OutputOptions {
  /** Cut the output into parts of this many bytes (`NAME.000`, …, plus `NAME.sha256`). */
  splitSize?: number;
  /** Replace existing output files (otherwise OUTPUT_EXISTS, checked before and at commit). */
  overwrite?: boolean;
  /**
   * Keep a journal of the blobs written (see `findUnfinished`), so that a run after a kill takes
   * them from the temporaries instead of fetching them again.
   */
  journal?: boolean;
  /**
   * Temporaries of a killed writer that this one reads from (`UnfinishedBlobs.files`): kept while
   * it writes, removed once it commits or discards.
   */
  adopt?: readonly string[];
  /**
   * With `journal`: where an output that is discarded (Ctrl-C, an error) moves its temporaries
   * and journal, for the next run to take finished blobs from (`findUnfinished`); without it
   * they are removed.
   */
  park?: string;
  /** Split output: sign the parts checksum file with this key (`NAME.sha256.sig`). */
  key?: KeyObject;
}

export interface CommittedOutput {
  /** The files now in place: the bundle file, or the parts in order. */
  files: string[];
  /** The parts checksum file (split output only). */
  checksumFile?: string;
  /** sha256 of each file in `files`. */
  sha256: Digest[];
  /** sha256 of the whole byte stream (the bundle, whether split or not). */
  digest: Digest;
  size: number;
}

export interface SplitResult {
  parts: string[];
  checksumFile: string;
  digest: Digest;
  size: number;
}

/**
 * Split an existing bundle file into `NAME.000`, `NAME.001`, … plus `NAME.sha256`, streaming,
 * atomically. `output` (default: the file itself) names the parts; an `output` that is a folder
 * (it exists as one, or ends in `/`) takes them under the bundle's own name. The source is left alone.
 */
export async function splitBundle(
  file: string,
  opts: {
    size: number | string;
    output?: string;
    overwrite?: boolean;
    key?: KeyObject;
    signal?: AbortSignal;
    /** After each chunk copied: bytes of the bundle copied, parts finished (a part is finished when the copy passed its end). */
    onProgress?: (p: {
      bytesDone: number;
      bytesTotal: number;
      partsDone: number;
      partsTotal: number;
    }) => void;
  },
): Promise<SplitResult> {
  const splitSize = parseSize(opts.size);
  let size: number;
  try {
    size = (await stat(file)).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    throw new InvalidInputError(`${file} does not exist`, {
      hint: 'give the path of a bundle .tar file',
      cause: err,
    });
  }
  const out = new PlacedOutput(await outputFile(opts.output ?? file, basename(file)), size, {
    splitSize,
    ...(opts.overwrite !== undefined ? { overwrite: opts.overwrite } : {}),
    ...(opts.key ? { key: opts.key } : {}),
  });
  try {
    throwIfAborted(opts.signal);
    await out.prepare();
    const partsTotal = Math.max(1, Math.ceil(size / splitSize));
    let at = 0;
    const source = createReadStream(file, {
      highWaterMark: WRITE_CHUNK,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    for await (const chunk of source as AsyncIterable<Buffer>) {
      await out.writeAt(at, chunk);
      at += chunk.length;
      out.settle(at);
      opts.onProgress?.({
        bytesDone: at,
        bytesTotal: size,
        partsDone: at === size ? partsTotal : Math.floor(at / splitSize),
        partsTotal,
      });
    }
    if (at !== size) throw new InvalidInputError(`${file} changed size while it was being split`);
    const done = await out.commit();
    return { parts: done.files, checksumFile: done.checksumFile!, digest: done.digest, size: done.size };
  } catch (err) {
    await out.discard();
    if (opts.signal?.aborted && !(err instanceof AbortedError)) {
      throw new AbortedError(`splitting ${file} aborted`, { cause: opts.signal.reason });
    }
    throw err;
  }
}
