import { createHash, type Hash } from 'node:crypto';
import { type FileHandle, open } from 'node:fs/promises';
import { type Digest, HashPool } from '../../digest/index.ts';
import { throwIfAborted } from '../../errors/index.ts';
import { MAX_MANIFEST_BYTES, type ParsedManifest, parseManifest } from '../../model/index.ts';
import { METADATA_ORDER } from '../format.ts';
import { BundleFormatError, digestOfBlobMember, MAX_METADATA_BYTES } from '../reader.ts';
import type { BundleSource, PartDigest, PartFile } from '../source.ts';
import { TarTruncatedError } from '../tar-reader.ts';
import { DuplicateTracker, entryProblem } from '../tar-safety.ts';
import type { SignatureGate } from './gate.ts';
import type { HashedBundle, HashedMember, Observation } from './observations.ts';
import { hashInPool, type PooledMember, withFd } from './pool-jobs.ts';
import { STOPPED_MEMBER } from './problems.ts';
import type { ProblemKind, VerifyOptions } from './report.ts';

/**
 * How a bundle's bytes are read and hashed — one pass, one open of each file. A directory or a
 * bundle read through a reader (`s3://`) is hashed as it streams past. A local tar or split
 * bundle is walked header to header (seeking; only small members are read), and its large
 * members, and whole files when their hashes are wanted, are hashed afterwards by worker threads
 * on the descriptors opened here, largest first. Either way the result lists what was found in
 * stored order, each file's hash where a streaming pass would have finished reading that file,
 * so the checks see the same thing. Hashing stops where the gate says (bad signature, too many
 * unlisted members).
 */

const PROGRESS_EVERY = 16 * 1024 * 1024;

/**
 * The parallel path hashes members at least this large in the pool (unless they are kept in
 * memory: metadata and blobs small enough to be manifests); smaller ones cost less on the main
 * thread than a round trip to a worker.
 */
const POOL_MIN_BYTES = 1024 * 1024;

/** What the walk found, to hand over once a streaming pass would have read up to byte `at`. */
interface Step {
  at: number;
  make: () => Observation[];
}

/** The first byte that is not a space, tab, CR or LF. */
function firstNonBlank(b: Buffer): number | undefined {
  return b.find((x) => x !== 0x20 && x !== 0x0a && x !== 0x0d && x !== 0x09);
}

function hexOf(d: Digest): string {
  return d.slice(d.indexOf(':') + 1);
}

export type HashOptions = Pick<VerifyOptions, 'signal' | 'onProgress' | 'onFile' | 'hashPool'>;

export async function hashBundle(
  source: BundleSource,
  gate: SignatureGate,
  opts: HashOptions,
): Promise<HashedBundle> {
  const signal = opts.signal;
  const observations: Observation[] = [];
  const manifests = new Map<string, ParsedManifest>();
  const truncated = new Set<string>();
  const dups = new DuplicateTracker();
  let stopped: string | undefined;
  let memberCount = 0;
  let bytes = 0;
  let readBytes = 0;
  let lastMember: string | undefined;
  const emit = (o: Observation) => {
    if (o.type === 'member' && o.member.earlier === undefined) lastMember = o.member.name;
    observations.push(o);
  };
  const problem = (member: string, kind: ProblemKind, message: string): Observation => ({
    type: 'problem',
    member,
    kind,
    message,
  });
  const progress = (member: string) =>
    opts.onProgress?.({ member, members: memberCount, bytes: readBytes, totalBytes: source.size });

  const localFiles = source.localFiles;
  const fileRanges = source.fileRanges?.bind(source);
  // The hash workers read the files opened here, once, not their paths again: a file renamed
  // over the bundle while it is verified is not what gets hashed.
  const handles = new Map<string, FileHandle>();
  const fdOf = (path: string) => handles.get(path)?.fd;
  const parallel = localFiles !== undefined && fileRanges !== undefined;
  const wholeFiles = parallel && (source.kind === 'parts' || opts.onFile !== undefined);
  const steps: Step[] = [];
  let lastAt = 0;
  /** Hand over now (streaming), or in order once the workers are done (parallel). */
  const step = (at: number, make: () => Observation[]) => {
    if (!parallel) {
      for (const o of make()) emit(o);
      return;
    }
    steps.push({ at, make });
    lastAt = at;
  };
  const onPart = (part: PartDigest) => emit({ type: 'part', part });
  const pooled: PooledMember[] = [];
  let ownPool: HashPool | undefined;
  const pool = (): HashPool => {
    if (opts.hashPool) return opts.hashPool;
    ownPool ??= new HashPool();
    return ownPool;
  };

  try {
    if (parallel)
      for (const f of localFiles) if (!handles.has(f.path)) handles.set(f.path, await open(f.path, 'r'));
    if (wholeFiles) pool().start();
    const entries = source.entries({
      checkTrailing: true,
      ...(parallel
        ? { seek: true }
        : {
            onPart,
            ...(opts.onFile ? { onFile: opts.onFile } : {}),
            onBytes: (n: number) => {
              readBytes = n;
            },
          }),
      ...(signal ? { signal } : {}),
    });
    let bodyTruncated: string | undefined;
    try {
      for (;;) {
        const r = await entries.next();
        if (r.done) {
          const end = r.value;
          step(Number.POSITIVE_INFINITY, () => [
            ...(end?.missingEndMarker
              ? [
                  problem(
                    '(end of archive)',
                    'truncated',
                    'the archive ends without an end-of-archive marker',
                  ),
                ]
              : []),
            ...(end?.trailingData
              ? [
                  problem(
                    '(after end of archive)',
                    'extra',
                    'non-zero data follows the end-of-archive marker',
                  ),
                ]
              : []),
          ]);
          break;
        }
        const e = r.value;
        throwIfAborted(signal);
        const unsafe = entryProblem(e);
        if (unsafe) {
          step(e.offset, () => [problem(e.rawName, 'unsafe', unsafe)]);
          continue;
        }
        const earlier = dups.add(e.name);
        if (earlier !== undefined) {
          step(e.offset, () => [
            problem(
              e.name,
              'duplicate',
              earlier === e.name
                ? 'the member appears more than once'
                : `differs only in case from ${earlier}`,
            ),
          ]);
        }
        if (e.type === 'directory') continue;

        const isMeta = METADATA_ORDER.includes(e.name);
        if (isMeta && e.size > MAX_METADATA_BYTES) {
          throw new BundleFormatError(
            source.path,
            e.name,
            `is ${e.size} bytes, more than the ${MAX_METADATA_BYTES} allowed for a metadata member`,
          );
        }
        const admission = isMeta ? { stop: false as const, listed: true } : gate.admit(e.name);
        if (admission.stop) {
          stopped = admission.why;
          const message =
            admission.kind === 'signature'
              ? `not checked: ${admission.why}, so verification stopped at ${e.name} (${Math.max(0, source.size - Math.max(0, e.headerOffset))} of ${source.size} bytes not read)`
              : `not checked: ${admission.why}, so verification stopped at ${e.name}`;
          step(e.offset, () => [problem(STOPPED_MEMBER, admission.kind, message)]);
          break;
        }
        const blobDigest = digestOfBlobMember(e.name);
        // A member the signed SHA256SUMS does not list is hashed (and reported), never kept.
        const keep = isMeta || (admission.listed && blobDigest !== undefined && e.size <= MAX_MANIFEST_BYTES);
        const namedAlgorithm =
          blobDigest && !blobDigest.startsWith('sha256:')
            ? blobDigest.slice(0, blobDigest.indexOf(':'))
            : undefined;
        const end = e.offset + e.size;

        if (parallel && !keep && e.size >= POOL_MIN_BYTES) {
          // Hashed later in a worker; handed over at its place in stored order.
          const job: PooledMember = {
            name: e.name,
            size: e.size,
            ranges: fileRanges(e).map((r) => withFd(r, fdOf)),
            algorithms: namedAlgorithm ? ['sha256', namedAlgorithm] : ['sha256'],
          };
          pooled.push(job);
          if (pooled.length === 1) pool().start();
          step(end, () => [
            job.failure
              ? problem(e.name, 'truncated', job.failure.message)
              : {
                  type: 'member',
                  member: {
                    name: e.name,
                    earlier,
                    isMeta,
                    blobDigest,
                    size: e.size,
                    hex: job.hex as string,
                    namedHex: job.namedHex,
                  },
                },
          ]);
          continue;
        }

        const sha256 = createHash('sha256');
        const named: Hash | undefined = namedAlgorithm ? createHash(namedAlgorithm) : undefined;
        const chunks: Buffer[] = [];
        // A blob is kept only while it may be a manifest: once its first non-blank byte is not
        // `{` (a layer), its bytes are hashed and dropped.
        let keeping = keep && (isMeta || earlier === undefined);
        let sniffed = isMeta;
        let size = 0;
        let nextProgress = PROGRESS_EVERY;
        progress(e.name);
        try {
          for await (const c of e.body()) {
            sha256.update(c);
            named?.update(c);
            if (keeping && !sniffed) {
              const first = firstNonBlank(c);
              if (first !== undefined) {
                sniffed = true;
                keeping = first === 0x7b;
              }
            }
            if (keeping) chunks.push(c);
            size += c.length;
            bytes += c.length;
            if (parallel) readBytes += c.length;
            if (size >= nextProgress) {
              nextProgress += PROGRESS_EVERY;
              progress(e.name);
            }
          }
        } catch (err) {
          if (err instanceof TarTruncatedError) bodyTruncated = e.name;
          throw err;
        }
        memberCount++;
        const member: HashedMember = {
          name: e.name,
          earlier,
          isMeta,
          blobDigest,
          size,
          hex: sha256.digest('hex'),
          namedHex: named?.digest('hex'),
        };
        const contentOk = !blobDigest || (member.namedHex ?? member.hex) === hexOf(blobDigest);
        const data = keeping ? Buffer.concat(chunks) : undefined;
        if (blobDigest && contentOk && data && earlier === undefined && firstNonBlank(data) === 0x7b) {
          try {
            manifests.set(blobDigest, parseManifest(data, undefined, blobDigest));
          } catch {
            // a JSON blob that is not a manifest (a config): nothing to walk
          }
        }
        if (isMeta && earlier === undefined) {
          member.data = data;
          if (data) gate.addMetadata(e.name, data);
        }
        step(end, () => [{ type: 'member', member }]);
        progress(e.name);
      }
    } catch (err) {
      if (!(err instanceof TarTruncatedError)) throw err;
      truncated.add(bodyTruncated ?? err.member);
      step(lastAt, () => [problem(err.member, 'truncated', err.message)]);
    } finally {
      // A walk left early (verification stopped, an error) still closes what it opened: the
      // generator's own finally releases the reader and its file handles.
      await entries.return(undefined).catch(() => {});
    }

    if (parallel) {
      const fileHex = await hashInPool({
        pool: pool(),
        source,
        pooled,
        files: wholeFiles && stopped === undefined ? localFiles : [],
        signal,
        startBytes: readBytes,
        onBytes: (label, n) => {
          readBytes = n;
          progress(label);
        },
        fdOf,
        onMember: (m) => {
          memberCount++;
          bytes += m.size;
        },
      });
      for (const m of pooled) if (m.failure) truncated.add(m.name);
      // In stored order, with each file's hash where a streaming pass would have finished that file.
      let next = 0;
      let fileEnd = 0;
      const filesUpTo = (at: number) => {
        while (next < fileHex.length) {
          const f = localFiles[next] as PartFile;
          if (fileEnd + f.size >= at) return;
          fileEnd += f.size;
          const hex = fileHex[next++];
          if (hex === undefined) continue;
          const digest: PartDigest = { name: f.name, path: f.path, hex, size: f.size };
          if (source.kind === 'parts') onPart(digest);
          opts.onFile?.(digest);
        }
      };
      for (const s of steps) {
        filesUpTo(s.at);
        for (const o of s.make()) emit(o);
      }
      filesUpTo(Number.POSITIVE_INFINITY);
      readBytes = source.size;
      progress(lastMember ?? source.path);
    }
  } finally {
    await ownPool?.close();
    for (const h of handles.values()) await h.close().catch(() => {});
  }
  return { observations, manifests, truncated, stopped, members: memberCount, bytes };
}
