import { type FileRange, type HashPool, ShortReadError } from '../../digest/index.ts';
import { fanOut } from '../../util/fan-out.ts';
import type { BundleSource, PartFile } from '../source.ts';
import { TarTruncatedError } from '../tar-reader.ts';

/** A large member left to the hash workers. */
export interface PooledMember {
  name: string;
  size: number;
  ranges: FileRange[];
  algorithms: string[];
  /** sha256 hex, once hashed. */
  hex?: string;
  /** The hex of the second algorithm (a `blobs/sha512/…` member), once hashed. */
  namedHex?: string;
  /** Set when a file ended inside the member while it was hashed. */
  failure?: TarTruncatedError;
}

export interface PoolWork {
  pool: HashPool;
  source: BundleSource;
  pooled: PooledMember[];
  /** Files to hash whole (empty when no file hash is wanted). */
  files: readonly PartFile[];
  signal: AbortSignal | undefined;
  /** Bytes of the source accounted for before this work. */
  startBytes: number;
  /** Progress: the job reporting and the bytes of the source accounted for so far. */
  onBytes: (label: string, bytes: number) => void;
  onMember: (m: PooledMember) => void;
  /** The descriptor of a local file opened once for this verification. */
  fdOf: (path: string) => number | undefined;
}

/** The range read through the descriptor opened for this verification, when there is one. */
export function withFd(r: FileRange, fdOf: (path: string) => number | undefined): FileRange {
  const fd = fdOf(r.path);
  return fd === undefined ? r : { ...r, fd };
}

/**
 * Hash the pooled members and the whole files in the pool, largest first so that the workers
 * finish together rather than one of them starting the largest job last. Progress is the share
 * of this work done, scaled onto the bytes of the source not yet accounted for (a split bundle
 * is hashed twice: by member and by part). Returns the sha256 hex of each file, undefined for
 * a file that ended early; a member a file ended inside gets its `failure`. Any other failure
 * stops the remaining jobs (fail-fast fan-out) and is thrown.
 */
export async function hashInPool(w: PoolWork): Promise<Array<string | undefined>> {
  interface Job {
    length: number;
    label: string;
    ranges: FileRange[];
    algorithms: string[];
    done: (hex: string[]) => void;
    short: (err: ShortReadError) => void;
  }
  const fileHex: Array<string | undefined> = w.files.map(() => undefined);
  const jobs: Job[] = w.pooled.map((m) => ({
    length: m.size,
    label: m.name,
    ranges: m.ranges,
    algorithms: m.algorithms,
    done: (hex) => {
      m.hex = hex[0];
      if (hex[1] !== undefined) m.namedHex = hex[1];
      w.onMember(m);
    },
    short: (err) => {
      m.failure = new TarTruncatedError(
        w.source.path,
        m.name,
        `declares ${m.size} bytes, but ${err.path} ends at byte ${err.offset}, inside it (the file shrank while it was read)`,
      );
    },
  }));
  w.files.forEach((f, i) => {
    jobs.push({
      length: f.size,
      label: f.name,
      ranges: f.size > 0 ? [withFd({ path: f.path, start: 0, length: f.size }, w.fdOf)] : [],
      algorithms: ['sha256'],
      done: (hex) => {
        fileHex[i] = hex[0];
      },
      short: () => {},
    });
  });
  if (jobs.length === 0) return fileHex;
  jobs.sort((a, b) => b.length - a.length);
  const total = jobs.reduce((n, j) => n + j.length, 0);
  const scale = total > 0 ? Math.max(0, w.source.size - w.startBytes) / total : 0;
  let hashed = 0;
  await fanOut(
    jobs,
    (j, signal) =>
      w.pool
        .hash(j.ranges, j.algorithms, {
          signal,
          onBytes: (n) => {
            hashed += n;
            w.onBytes(j.label, w.startBytes + Math.round(hashed * scale));
          },
        })
        .then(j.done, (err: unknown) => {
          if (!(err instanceof ShortReadError)) throw err;
          j.short(err);
        }),
    w.signal ? { signal: w.signal } : {},
  );
  return fileHex;
}
