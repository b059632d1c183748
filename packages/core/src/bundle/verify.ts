import { createHash, type Hash, type KeyObject } from 'node:crypto';
import { type FileHandle, open, readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { type Digest, type FileRange, HashPool, ShortReadError } from '../digest/index.ts';
import { InvalidInputError, throwIfAborted, VerificationError } from '../errors/index.ts';
import {
  Annotation,
  type Descriptor,
  type ImageIndex,
  isManifestOrIndexType,
  MAX_MANIFEST_BYTES,
  MediaType,
  type ParsedManifest,
  parseManifest,
  successors,
} from '../model/index.ts';
import { checkChecksumSignature, readChecksumSignature } from './checksum-file.ts';
import {
  FILES_DIR,
  METADATA_ORDER,
  Member,
  OCI_LAYOUT_CONTENT,
  partsChecksumName,
  partsChecksumSignatureName,
} from './format.ts';
import { loadPublicKey, publicKeyFingerprint } from './keys.ts';
import type { BundleSignature, LadingJson } from './lading-json.ts';
import {
  BundleFormatError,
  blobMemberName,
  digestOfBlobMember,
  MAX_METADATA_BYTES,
  parseIndexJson,
  parseLadingJson,
} from './reader.ts';
import { verifySignature } from './signing.ts';
import {
  type BundleInput,
  type BundleSource,
  type BundleSourceKind,
  bundleInputName,
  openSource,
  type PartDigest,
  type PartFile,
} from './source.ts';
import { parseSums } from './sums.ts';
import { TarTruncatedError } from './tar-reader.ts';
import { DuplicateTracker, entryProblem } from './tar-safety.ts';

/**
 * `verifyBundle`: one pass over a bundle (tar, split parts or extracted directory). The metadata
 * comes first; the signature over SHA256SUMS is checked with the given key as soon as both are
 * in; every following member is hashed and compared with SHA256SUMS, every blob with its own
 * name; then the content graph of every image and chart in index.json is checked for
 * completeness. Failures go into the report; only unusable input (a malformed tar, an unreadable
 * file or key) throws. A directory or a bundle read through a reader (`s3://`) is hashed as it
 * streams past; a local tar or split bundle is walked header to header and its large members
 * (and whole files, when their hashes are wanted) are hashed by worker threads in parallel
 * (`HashPool`) — with the same report.
 */

export type ProblemKind =
  | 'digest'
  | 'missing'
  | 'extra'
  | 'unsafe'
  | 'truncated'
  | 'signature'
  | 'order'
  | 'schema'
  | 'duplicate'
  /** `lading-load verify --image-key`: a carried upstream signature does not verify with the site's key. */
  | 'upstream-signature';

export interface VerifyProblem {
  /** The member (or part file) at fault. */
  member: string;
  kind: ProblemKind;
  message: string;
}

export interface ArtifactReport {
  ref: string;
  digest: string;
  mediaType: string;
  ok: boolean;
  problems: string[];
  /** Blobs of its graph a differential bundle leaves out (expected at the target). */
  expectedAtTarget: string[];
  /** Images whose platform filter wrote a new index: the digest upstream (lading.json). */
  upstreamDigest?: string;
  /** Supply-chain artifacts carried with it (lading.json extras[]). */
  extras?: number;
  /** Upstream signatures checked at build time (lading.json signatures[]). */
  signatures?: BundleSignature[];
}

export interface FileReport {
  path: string;
  ok: boolean;
  problems: string[];
}

export interface PartReport {
  name: string;
  ok: boolean;
  sha256: string | null;
  problems: string[];
}

export interface VerifyReport {
  ok: boolean;
  bundle: { name: string | null; version: string | null; path: string; kind: BundleSourceKind };
  signature: { ok: boolean; keyFingerprint: string };
  /** Regular-file members seen. */
  members: number;
  /** Member data bytes hashed. */
  bytes: number;
  images: ArtifactReport[];
  charts: ArtifactReport[];
  files: FileReport[];
  /** Split bundles only. */
  parts: PartReport[];
  /** Differential bundles: blobs referenced but left out, expected at the target. */
  expectedAtTarget: string[];
  since: { name: string; version: string; digest: string } | null;
  /** `sha256:<hex>` of the SHA256SUMS member as stored (what the signature covers), when present. */
  sumsDigest: string | null;
  problems: VerifyProblem[];
}

export interface VerifyProgress {
  /** The member being hashed (on the parallel path: the member or file a worker last reported on). */
  member: string;
  /** Members done so far. */
  members: number;
  /**
   * Bytes of the source verified so far. On the parallel path (local tar or split bundle): the
   * small members read by the walk, then the share of the workers' hashing done, scaled so that
   * it ends at `totalBytes` (a split bundle is hashed twice, by member and by part).
   */
  bytes: number;
  /** Total bytes of the source. */
  totalBytes: number;
}

export interface VerifyOptions {
  /** The release public key: SPKI PEM text, a path to a PEM file, or a KeyObject. */
  publicKey: string | Uint8Array | KeyObject;
  signal?: AbortSignal;
  onProgress?: (p: VerifyProgress) => void;
  /**
   * Tar and split bundles: called with the sha256 of each file (the tar, or each part) as it
   * streams past — hashed in the same pass (costs CPU, no second read). Not called for a
   * directory, nor for a file the pass did not read to its end.
   */
  onFile?: (file: PartDigest) => void;
  /**
   * Local tar and split bundles hash their large members (and whole files, for `onFile` and
   * the parts of a split bundle) in worker threads, in parallel: in this pool when given (the
   * caller closes it), else in one of min(4, cores) workers made for this call and closed.
   */
  hashPool?: HashPool;
}

/** The bundle failed verification (exit 3); names every bad member. */
export class BundleVerificationError extends VerificationError {
  override readonly code = 'BUNDLE_VERIFICATION_FAILED';
  readonly report: VerifyReport;
  /** Every member with a problem, in report order. */
  readonly members: string[];
  constructor(report: VerifyReport) {
    const members = [...new Set(report.problems.map((p) => p.member))];
    const lines = report.problems.slice(0, 50).map((p) => `  ${p.member} (${p.kind}): ${p.message}`);
    if (report.problems.length > 50) lines.push(`  … and ${report.problems.length - 50} more`);
    super(
      `${report.bundle.path} failed verification: ${report.problems.length} problem(s) in ${members.length} member(s): ${members.slice(0, 20).join(', ')}${members.length > 20 ? ', …' : ''}\n${lines.join('\n')}`,
      {
        hint: verifyFailureHint(report),
      },
    );
    this.report = report;
    this.members = members;
  }
}

/**
 * The likeliest cause of a failed verification, for the error's hint: a missing part of a split
 * bundle, an unsigned bundle, a signature that does not verify (wrong key, or changed after
 * signing), or a change after signing.
 */
export function verifyFailureHint(report: Pick<VerifyReport, 'problems' | 'signature' | 'parts'>): string {
  const missingPart = report.parts.find((p) => p.problems.some((x) => x.startsWith('missing')));
  if (missingPart) {
    return `part ${missingPart.name} of ${report.parts.length} is missing — copy every part of the split bundle (and NAME.tar.sha256 with its .sig) into one folder`;
  }
  if (report.problems.some((p) => p.member === Member.signature && p.kind === 'missing')) {
    return 'the bundle is unsigned (built with --unsigned, or its SHA256SUMS.sig was removed): it cannot be verified; ask the release engineer for a signed bundle';
  }
  if (!report.signature.ok) {
    return 'the signature does not verify: wrong public key (--key release.pub), or the bundle was changed after signing';
  }
  return 'the bundle was changed or damaged after it was signed; do not use it — get it again from a trusted source';
}

/** Throw BundleVerificationError unless the report is OK. */
export function assertVerified(report: VerifyReport): void {
  if (!report.ok) throw new BundleVerificationError(report);
}

const PROGRESS_EVERY = 16 * 1024 * 1024;

/** The problem that says verification stopped before the end of the bundle. */
export const STOPPED_MEMBER = '(rest of the bundle)';

/** Members not listed in a validly signed SHA256SUMS hashed before verify stops. */
const MAX_UNLISTED = 1000;

/**
 * The parallel path hashes members at least this large in the pool (unless they are kept in
 * memory: metadata and blobs small enough to be manifests); smaller ones cost less on the main
 * thread than a round trip to a worker.
 */
const POOL_MIN_BYTES = 1024 * 1024;

interface MemberInfo {
  name: string;
  hex: string;
  size: number;
  /** Index among regular-file members. */
  position: number;
}

/** A member as the walk found it. */
interface WalkedMember {
  name: string;
  /** The name of an earlier member it duplicates (same name, or differing only in case). */
  earlier: string | undefined;
  isMeta: boolean;
  blobDigest: Digest | undefined;
  /** The hex of the algorithm in a non-sha256 blob name (`blobs/sha512/…`), once hashed. */
  namedHex?: string;
}

/** A large member left to the pool. */
interface PooledMember {
  walked: WalkedMember;
  size: number;
  ranges: FileRange[];
  algorithms: string[];
  /** sha256 hex, once hashed. */
  hex?: string;
  /** Set when a file ended inside the member while it was hashed. */
  failure?: TarTruncatedError;
}

/** Something the walk found, to report once a pass would have read up to byte `at`. */
interface Step {
  at: number;
  run: () => void;
}

class Problems {
  readonly list: VerifyProblem[] = [];
  private readonly seen = new Set<string>();
  add(member: string, kind: ProblemKind, message: string): void {
    const key = `${member}\0${kind}\0${message}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.list.push({ member, kind, message });
  }
  about(member: string): string[] {
    return this.list.filter((p) => p.member === member).map((p) => `${p.kind}: ${p.message}`);
  }
}

/** The first byte that is not a space, tab, CR or LF. */
function firstNonBlank(b: Buffer): number | undefined {
  return b.find((x) => x !== 0x20 && x !== 0x0a && x !== 0x0d && x !== 0x09);
}

function withFd(r: FileRange, fdOf: (path: string) => number | undefined): FileRange {
  const fd = fdOf(r.path);
  return fd === undefined ? r : { ...r, fd };
}

function hexOf(d: Digest): string {
  return d.slice(d.indexOf(':') + 1);
}

/**
 * Verify a bundle (a path, or `{ reader, name }` such as an `s3://` object; see `openSource`);
 * see the module comment. Throws only for unusable input.
 */
export async function verifyBundle(path: BundleInput, opts: VerifyOptions): Promise<VerifyReport> {
  const key = await loadPublicKey(opts.publicKey);
  const keyFingerprint = publicKeyFingerprint(key);
  const source = await openSource(path, opts.signal ? { signal: opts.signal } : {});
  try {
    const report = await verifySource(source, key, keyFingerprint, opts);
    // Neither SHA256SUMS nor lading.json anywhere and nothing damaged: not a bundle but another
    // file (empty, YAML, a tar of something else) — bad input (exit 2), not a failed verification.
    // Problems with a named member (a header that promises more than the file holds, an unsafe
    // path) mean a damaged or hostile bundle; the walk's own places — "(header at byte 0)",
    // "(end of archive)" — are what any short non-tar file gives.
    const damaged = report.problems.some(
      (p) =>
        (p.kind === 'truncated' || p.kind === 'unsafe' || p.kind === 'duplicate') &&
        !p.member.startsWith('('),
    );
    if (report.sumsDigest === null && report.bundle.name === null && !report.signature.ok && !damaged)
      throw new NotABundleError(bundleInputName(path), report.members);
    return report;
  } finally {
    await source.close();
  }
}

/** The input holds neither SHA256SUMS nor lading.json: it is not a Lading bundle (exit 2). */
export class NotABundleError extends InvalidInputError {
  override readonly code: string = 'NOT_A_BUNDLE';
  readonly path: string;
  constructor(path: string, members: number) {
    super(
      `${path} is not a Lading bundle: ${members === 0 ? 'it holds no tar members' : `none of its ${members} member(s) is SHA256SUMS or lading.json`}`,
      {
        hint: 'give the bundle tar file (NAME.tar), the first part of a split bundle (NAME.tar.000), an extracted bundle directory or s3://bucket/NAME.tar',
      },
    );
    this.path = path;
  }
}

/**
 * The signature `NAME.tar.sha256.sig` over the checksum file's bytes (the parts and the
 * standalone loader are authenticated only through it).
 */
async function checkChecksumFileSignature(
  name: string,
  text: Buffer,
  sig: Buffer | undefined,
  key: KeyObject,
  keyFingerprint: string,
  problems: Problems,
): Promise<void> {
  const sigName = partsChecksumSignatureName(name);
  const state = await checkChecksumSignature(sig, text, key);
  if (state === 'missing') {
    problems.add(
      sigName,
      'signature',
      `${sigName} is missing: ${name} (the list of parts and the loader's checksum) is not signed`,
    );
  } else if (state === 'bad') {
    problems.add(
      sigName,
      'signature',
      `the signature over ${name} does not verify with key ${keyFingerprint} (the file was changed after signing, or signed with another key)`,
    );
  }
}

async function checkPartsFile(
  source: BundleSource,
  problems: Problems,
  key: KeyObject,
  keyFingerprint: string,
): Promise<Map<string, string> | undefined> {
  const file = source.partsChecksumPath;
  const onDisk = new Map([...source.parts, ...source.partsAfterGap].map((p) => [p.name, p]));
  // A gap in the numbering is a missing part whatever the parts file says.
  const all = [...onDisk.keys()].sort();
  const last = all.length ? Number.parseInt(all[all.length - 1]!.slice(-3), 10) : -1;
  const stem = source.parts[0]?.name.slice(0, -4) ?? basename(source.path).slice(0, -4);
  for (let i = 0; i <= last; i++) {
    const n = `${stem}.${String(i).padStart(3, '0')}`;
    if (!onDisk.has(n)) problems.add(n, 'missing', `split bundle part ${n} is missing`);
  }
  if (!file) return undefined;
  let text: Buffer | undefined;
  try {
    text = source.readPartsChecksum ? await source.readPartsChecksum() : await readFile(file);
  } catch {
    text = undefined;
  }
  if (text === undefined) {
    problems.add(basename(file), 'missing', `the parts checksum file ${basename(file)} is missing`);
    return undefined;
  }
  let sig: Buffer | undefined;
  try {
    sig = await source.readPartsChecksumSignature?.();
  } catch {
    sig = undefined;
  }
  await checkChecksumFileSignature(basename(file), text, sig, key, keyFingerprint, problems);
  let expected: Map<string, string>;
  try {
    // Lines that do not name a part of this bundle (the standalone loader put beside it by
    // `create --with-loader`) are not parts: `sha256sum -c` checks them, the bundle reader ignores them.
    const isPart = (p: string) => p.startsWith(`${stem}.`) && /^\d{3,}$/.test(p.slice(stem.length + 1));
    expected = new Map(
      parseSums(text, basename(file))
        .filter((e) => isPart(e.path))
        .map((e) => [e.path, e.hex]),
    );
  } catch (err) {
    problems.add(basename(file), 'schema', (err as Error).message);
    return undefined;
  }
  for (const name of expected.keys()) {
    if (!onDisk.has(name)) problems.add(name, 'missing', `split bundle part ${name} is missing`);
  }
  for (const name of onDisk.keys()) {
    if (!expected.has(name)) problems.add(name, 'extra', `part ${name} is not listed in ${basename(file)}`);
  }
  return expected;
}

interface PoolWork {
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

/**
 * Hash the pooled members and the whole files in the pool, largest first so that the workers
 * finish together rather than one of them starting the largest job last. Progress is the share
 * of this work done, scaled onto the bytes of the source not yet accounted for (a split bundle
 * is hashed twice: by member and by part). Returns the sha256 hex of each file, undefined for
 * a file that ended early; a member a file ended inside gets its `failure`. Any other failure
 * throws and stops the remaining jobs.
 */
async function hashInPool(w: PoolWork): Promise<Array<string | undefined>> {
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
    label: m.walked.name,
    ranges: m.ranges,
    algorithms: m.algorithms,
    done: (hex) => {
      m.hex = hex[0];
      if (hex[1] !== undefined) m.walked.namedHex = hex[1];
      w.onMember(m);
    },
    short: (err) => {
      m.failure = new TarTruncatedError(
        w.source.path,
        m.walked.name,
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
  const stop = new AbortController();
  const signal = w.signal ? AbortSignal.any([w.signal, stop.signal]) : stop.signal;
  try {
    await Promise.all(
      jobs.map((j) =>
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
      ),
    );
  } catch (err) {
    stop.abort();
    throw err;
  }
  return fileHex;
}

async function verifySource(
  source: BundleSource,
  key: KeyObject,
  keyFingerprint: string,
  opts: VerifyOptions,
): Promise<VerifyReport> {
  const problems = new Problems();
  const signal = opts.signal;

  // Split bundles: the parts file first; each part is hashed in the same pass.
  const partReports: PartReport[] = [];
  let expectedParts: Map<string, string> | undefined;
  if (source.kind === 'parts') expectedParts = await checkPartsFile(source, problems, key, keyFingerprint);
  else if (source.kind === 'tar' && source.localFiles) {
    // An unsplit bundle with the standalone loader beside it: NAME.tar.sha256 lists both.
    const file = partsChecksumName(source.path);
    const text = await readFile(file).catch(() => undefined);
    if (text !== undefined) {
      const sig = await readChecksumSignature(file).catch(() => undefined);
      await checkChecksumFileSignature(basename(file), text, sig, key, keyFingerprint, problems);
    }
  }
  const onPart = (p: PartDigest) => {
    const want = expectedParts?.get(p.name);
    if (want !== undefined && want !== p.hex) {
      problems.add(
        p.name,
        'digest',
        `sha256 of the part is ${p.hex}, ${basename(source.partsChecksumPath ?? '')} says ${want}`,
      );
    }
    partReports.push({ name: p.name, ok: true, sha256: p.hex, problems: [] });
  };

  /** The signature, checked as soon as the walk has SHA256SUMS and its signature. */
  const early = {
    meta: new Map<string, Buffer>(),
    signature: 'pending' as 'pending' | 'ok' | 'bad',
    /** The member names SHA256SUMS lists, once its signature holds. */
    sums: undefined as Set<string> | undefined,
    unlisted: 0,
    add(name: string, data: Buffer) {
      this.meta.set(name, data);
      const sums = this.meta.get(Member.sums);
      const sig = this.meta.get(Member.signature);
      if (this.signature !== 'pending' || !sums || !sig) return;
      this.signature = sig.length > 0 && verifySignature(sums, sig, key) ? 'ok' : 'bad';
      if (this.signature === 'ok') {
        try {
          this.sums = new Set(parseSums(sums).map((x) => x.path));
        } catch {
          // reported with the SHA256SUMS checks
        }
      }
    },
  };
  /** Why the walk stopped before the end (the signature failed, too many unlisted members). */
  let stopped: string | undefined;
  const meta = new Map<string, Buffer>();
  const members = new Map<string, MemberInfo>();
  const order: string[] = [];
  const duplicates: MemberInfo[] = [];
  const manifests = new Map<string, ParsedManifest>();
  const badContent = new Set<string>();
  const dups = new DuplicateTracker();
  let memberCount = 0;
  let bytes = 0;
  let readBytes = 0;
  /** Members the archive (or a file of it) ends inside. */
  const truncated = new Set<string>();
  let signatureOk = false;
  let signatureChecked = false;

  const checkSignature = () => {
    if (signatureChecked) return;
    const sums = meta.get(Member.sums);
    const sig = meta.get(Member.signature);
    if (!sums || !sig) return;
    signatureChecked = true;
    signatureOk = sig.length > 0 && verifySignature(sums, sig, key);
    if (!signatureOk) {
      problems.add(
        Member.signature,
        'signature',
        `the signature over ${Member.sums} does not verify with key ${keyFingerprint} (the bundle was changed after signing, or it was signed with another key)`,
      );
    }
  };

  const progress = (member: string) =>
    opts.onProgress?.({ member, members: memberCount, bytes: readBytes, totalBytes: source.size });

  /** A member hashed: record it in stored order, check it against the digest in its name. */
  const record = (m: WalkedMember, hex: string, size: number, contentOk: boolean, data?: Buffer) => {
    const info: MemberInfo = { name: m.name, hex, size, position: order.length };
    if (m.earlier !== undefined) {
      duplicates.push(info);
    } else {
      members.set(m.name, info);
      order.push(m.name);
    }
    if (m.isMeta && m.earlier === undefined) {
      meta.set(m.name, data ?? Buffer.alloc(0));
      checkSignature();
    }
    if (m.blobDigest && !contentOk) {
      badContent.add(m.name);
      problems.add(m.name, 'digest', `content hashes to ${m.namedHex ?? hex}, not the digest in its name`);
    }
  };

  // The parallel path (local tar and split bundles): the walk seeks from header to header and
  // reads only small members; large ones, and whole files where their hashes are wanted, are
  // hashed afterwards by worker threads, largest first. What the walk finds is kept as steps and
  // replayed in stored order once the hashes are in, each file's result at the point where a
  // streaming pass would have finished reading that file, so the report is the streaming one.
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
  /** Run now (streaming), or at replay once a pass would have read up to byte `at` (parallel). */
  const step = (at: number, run: () => void) => {
    if (!parallel) return run();
    steps.push({ at, run });
    lastAt = at;
  };
  const pooled: PooledMember[] = [];
  let ownPool: HashPool | undefined;
  const pool = (): HashPool => {
    if (opts.hashPool) return opts.hashPool;
    ownPool ??= new HashPool();
    return ownPool;
  };
  if (parallel)
    for (const f of localFiles) if (!handles.has(f.path)) handles.set(f.path, await open(f.path, 'r'));
  if (wholeFiles) pool().start();

  try {
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
          step(Number.POSITIVE_INFINITY, () => {
            if (end?.missingEndMarker) {
              problems.add(
                '(end of archive)',
                'truncated',
                'the archive ends without an end-of-archive marker',
              );
            }
            if (end?.trailingData) {
              problems.add(
                '(after end of archive)',
                'extra',
                'non-zero data follows the end-of-archive marker',
              );
            }
          });
          break;
        }
        const e = r.value;
        throwIfAborted(signal);
        const unsafe = entryProblem(e);
        if (unsafe) {
          step(e.offset, () => problems.add(e.rawName, 'unsafe', unsafe));
          continue;
        }
        const earlier = dups.add(e.name);
        if (earlier !== undefined) {
          step(e.offset, () =>
            problems.add(
              e.name,
              'duplicate',
              earlier === e.name
                ? 'the member appears more than once'
                : `differs only in case from ${earlier}`,
            ),
          );
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
        // Nothing past the metadata is hashed unless the signature over SHA256SUMS holds: a
        // bundle that is unsigned, signed with another key or changed cannot make verify read
        // (or keep) anything more than its metadata.
        if (!isMeta && early.signature !== 'ok') {
          const why =
            early.signature === 'bad'
              ? `the signature over ${Member.sums} does not verify with key ${keyFingerprint}`
              : !early.meta.has(Member.signature)
                ? `the bundle is not signed (no ${Member.signature} before its first blob)`
                : `${Member.sums} does not come before the first blob`;
          stopped = why;
          step(e.offset, () =>
            problems.add(
              STOPPED_MEMBER,
              'signature',
              `not checked: ${why}, so verification stopped at ${e.name} (${Math.max(0, source.size - Math.max(0, e.headerOffset))} of ${source.size} bytes not read)`,
            ),
          );
          break;
        }
        const blobDigest = digestOfBlobMember(e.name);
        // A member the signed SHA256SUMS does not list is hashed (and reported), never kept.
        const listed = isMeta || early.sums === undefined || early.sums.has(e.name);
        if (!listed && ++early.unlisted > MAX_UNLISTED) {
          stopped = `more than ${MAX_UNLISTED} members are not listed in ${Member.sums}`;
          const why = stopped;
          step(e.offset, () =>
            problems.add(
              STOPPED_MEMBER,
              'extra',
              `not checked: ${why}, so verification stopped at ${e.name}`,
            ),
          );
          break;
        }
        const keep = isMeta || (listed && blobDigest !== undefined && e.size <= MAX_MANIFEST_BYTES);
        const namedAlgorithm =
          blobDigest && !blobDigest.startsWith('sha256:')
            ? blobDigest.slice(0, blobDigest.indexOf(':'))
            : undefined;
        const walked: WalkedMember = { name: e.name, earlier, isMeta, blobDigest };
        const end = e.offset + e.size;

        if (parallel && !keep && e.size >= POOL_MIN_BYTES) {
          // Hashed later in a worker; recorded at its place in the replay.
          const job: PooledMember = {
            walked,
            size: e.size,
            ranges: fileRanges(e).map((r) => withFd(r, fdOf)),
            algorithms: namedAlgorithm ? ['sha256', namedAlgorithm] : ['sha256'],
          };
          pooled.push(job);
          if (pooled.length === 1) pool().start();
          step(end, () => {
            if (job.failure) {
              problems.add(e.name, 'truncated', job.failure.message);
            } else {
              const hex = job.hex as string;
              record(walked, hex, e.size, !blobDigest || (walked.namedHex ?? hex) === hexOf(blobDigest));
            }
          });
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
        const hex = sha256.digest('hex');
        if (named) walked.namedHex = named.digest('hex');
        const contentOk = !blobDigest || (walked.namedHex ?? hex) === hexOf(blobDigest);
        const data = keeping ? Buffer.concat(chunks) : undefined;
        if (blobDigest && contentOk && data && earlier === undefined && firstNonBlank(data) === 0x7b) {
          try {
            manifests.set(blobDigest, parseManifest(data, undefined, blobDigest));
          } catch {
            // a JSON blob that is not a manifest (a config): nothing to walk
          }
        }
        const kept = isMeta && earlier === undefined ? data : undefined;
        if (kept) early.add(e.name, kept);
        step(end, () => record(walked, hex, size, contentOk, kept));
        progress(e.name);
      }
    } catch (err) {
      if (!(err instanceof TarTruncatedError)) throw err;
      truncated.add(bodyTruncated ?? err.member);
      step(lastAt, () => problems.add(err.member, 'truncated', err.message));
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
      for (const m of pooled) if (m.failure) truncated.add(m.walked.name);
      // Replay, with each file's hash where a streaming pass would have finished that file.
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
        s.run();
      }
      filesUpTo(Number.POSITIVE_INFINITY);
      readBytes = source.size;
      progress(order.at(-1) ?? source.path);
    }
  } finally {
    await ownPool?.close();
    for (const h of handles.values()) await h.close().catch(() => {});
  }

  // Metadata: present and in contract order (a directory has no order).
  for (const m of METADATA_ORDER) {
    if (!members.has(m)) problems.add(m, 'missing', `required metadata member ${m} is not in the bundle`);
  }
  if (source.kind !== 'directory') {
    // Relative order of the metadata members present (one missing, e.g. the signature of an
    // unsigned bundle, is reported as missing, not as every later one out of order).
    const present = METADATA_ORDER.filter((m) => members.has(m));
    present.forEach((want, i) => {
      const at = members.get(want)?.position;
      if (at !== undefined && at !== i) {
        problems.add(
          want,
          'order',
          `must be member #${i + 1} (metadata order: ${METADATA_ORDER.join(', ')}), found at #${at + 1}`,
        );
      }
    });
  }
  checkSignature();

  // SHA256SUMS against every member.
  const sumsBytes = meta.get(Member.sums);
  let sums: Map<string, string> | undefined;
  if (sumsBytes) {
    try {
      sums = new Map(parseSums(sumsBytes).map((e) => [e.path, e.hex]));
    } catch (err) {
      problems.add(Member.sums, 'schema', (err as Error).message);
    }
  }
  if (sums) {
    for (const s of [Member.sums, Member.signature]) {
      if (sums.has(s)) problems.add(Member.sums, 'schema', `lists ${s}, which it cannot cover`);
    }
    for (const info of [...members.values(), ...duplicates]) {
      if (info.name === Member.sums || info.name === Member.signature) continue;
      const want = sums.get(info.name);
      if (want === undefined) {
        problems.add(info.name, 'extra', `not listed in ${Member.sums}`);
      } else if (want !== info.hex) {
        badContent.add(info.name);
        problems.add(info.name, 'digest', `sha256 is ${info.hex}, ${Member.sums} says ${want}`);
      }
    }
    for (const name of sums.keys()) {
      if (name === Member.sums || name === Member.signature) continue;
      // After a stop, what was not reached is not known to be missing.
      if (stopped === undefined && !members.has(name) && !truncated.has(name)) {
        problems.add(name, 'missing', `listed in ${Member.sums} but not in the bundle`);
      }
    }
  }

  // The metadata documents.
  const layout = meta.get(Member.ociLayout);
  if (layout) {
    let okLayout = false;
    try {
      okLayout =
        JSON.parse(layout.toString('utf8')).imageLayoutVersion ===
        JSON.parse(OCI_LAYOUT_CONTENT).imageLayoutVersion;
    } catch {}
    if (!okLayout) problems.add(Member.ociLayout, 'schema', `is not ${OCI_LAYOUT_CONTENT}`);
  }
  let lading: LadingJson | undefined;
  let ladingRaw: { name?: unknown; version?: unknown } | undefined;
  const ladingBytes = meta.get(Member.manifest);
  if (ladingBytes) {
    try {
      ladingRaw = JSON.parse(ladingBytes.toString('utf8'));
    } catch {}
    try {
      lading = parseLadingJson(ladingBytes);
    } catch (err) {
      problems.add(Member.manifest, 'schema', (err as Error).message);
    }
  }
  let index: ImageIndex | undefined;
  const indexBytes = meta.get(Member.index);
  if (indexBytes) {
    try {
      index = parseIndexJson(indexBytes);
    } catch (err) {
      problems.add(Member.index, 'schema', (err as Error).message);
    }
  }
  const sbom = meta.get(Member.sbom);
  if (sbom) {
    let okSbom = false;
    try {
      okSbom = JSON.parse(sbom.toString('utf8')).bomFormat === 'CycloneDX';
    } catch {}
    if (!okSbom) problems.add(Member.sbom, 'schema', 'is not a CycloneDX JSON document');
  }

  // The content graph of every image and chart.
  const omitted = new Set<string>(lading?.since?.omittedBlobs ?? []);
  const expectedAtTarget = new Set<string>();
  const images: ArtifactReport[] = [];
  const charts: ArtifactReport[] = [];
  for (const root of stopped === undefined ? (index?.manifests ?? []) : []) {
    const ref = root.annotations?.[Annotation.refName] ?? root.annotations?.[Annotation.containerdName];
    if (!ref) {
      problems.add(
        Member.index,
        'schema',
        `descriptor ${root.digest} has no ${Annotation.refName} annotation`,
      );
    }
    const report: ArtifactReport = {
      ref: ref ?? root.digest,
      digest: root.digest,
      mediaType: root.mediaType,
      ok: true,
      problems: [],
      expectedAtTarget: [],
    };
    const visited = new Set<string>();
    let isChart = (ref ?? '').startsWith('charts/');
    const walk = (d: Descriptor, parent: string) => {
      if (visited.has(d.digest)) return;
      visited.add(d.digest);
      const name = blobMemberName(d.digest);
      const info = members.get(name);
      if (!info) {
        if (omitted.has(d.digest)) {
          expectedAtTarget.add(d.digest);
          report.expectedAtTarget.push(d.digest);
          return;
        }
        const msg = `${d.mediaType} referenced by ${parent} is not in the bundle`;
        problems.add(name, truncated.has(name) ? 'truncated' : 'missing', msg);
        report.problems.push(`${name}: ${msg}`);
        return;
      }
      if (info.size !== d.size) {
        const msg = `is ${info.size} bytes, its descriptor in ${parent} says ${d.size}`;
        problems.add(name, 'digest', msg);
        report.problems.push(`${name}: ${msg}`);
      }
      if (badContent.has(name)) report.problems.push(`${name}: content does not match its digest`);
      if (!isManifestOrIndexType(d.mediaType) && !manifests.has(d.digest)) {
        if (d.mediaType === MediaType.helmConfig) isChart = true;
        return;
      }
      const node = manifests.get(d.digest);
      if (!node) {
        if (!badContent.has(name)) {
          const msg = `is not a readable ${d.mediaType} (larger than ${MAX_MANIFEST_BYTES} bytes or not valid)`;
          problems.add(name, 'schema', msg);
          report.problems.push(`${name}: ${msg}`);
        }
        return;
      }
      for (const child of successors(node)) walk(child, d.digest);
    };
    walk(root, Member.index);
    report.ok = report.problems.length === 0;
    (isChart ? charts : images).push(report);
  }
  // Supply-chain artifacts: every node of each carried extra is in the bundle (its subject is the
  // image, checked above).
  for (const img of lading?.images ?? []) {
    const report = images.find((r) => r.ref === img.ref);
    if (!report) continue;
    if (img.digest !== img.upstreamDigest) report.upstreamDigest = img.upstreamDigest;
    if (img.extras?.length) report.extras = img.extras.length;
    if (img.signatures?.length) report.signatures = img.signatures;
    for (const e of img.extras ?? []) {
      const nodes: Descriptor[] = [{ mediaType: e.mediaType, digest: e.digest as Digest, size: e.size }];
      const node = manifests.get(e.digest);
      if (node?.kind === 'manifest') nodes.push(node.manifest.config, ...node.manifest.layers);
      for (const d of nodes) {
        const name = blobMemberName(d.digest);
        if (members.has(name) || omitted.has(d.digest)) continue;
        const msg = `${d.mediaType} of the carried ${e.kind} ${e.digest} is not in the bundle`;
        problems.add(name, truncated.has(name) ? 'truncated' : 'missing', msg);
        report.problems.push(`${name}: ${msg}`);
        report.ok = false;
      }
    }
  }
  if (lading && index) {
    const roots = new Set(index.manifests.map((d) => d.digest as string));
    for (const img of lading.images) {
      if (!roots.has(img.digest)) {
        problems.add(Member.manifest, 'schema', `image ${img.ref} (${img.digest}) is not in ${Member.index}`);
      }
    }
    for (const c of lading.charts) {
      if (!roots.has(c.digest)) {
        problems.add(
          Member.manifest,
          'schema',
          `chart ${c.name} ${c.version} (${c.digest}) is not in ${Member.index}`,
        );
      }
    }
  }

  // Extra files.
  const fileNames = new Set<string>([...members.keys()].filter((n) => n.startsWith(FILES_DIR)));
  for (const f of lading?.files ?? []) {
    const candidates = f.path.startsWith(FILES_DIR) ? [f.path] : [`${FILES_DIR}${f.path}`, f.path];
    const found = candidates.map((c) => members.get(c)).find((m) => m !== undefined);
    const name = found?.name ?? (candidates[0] as string);
    fileNames.add(name);
    if (!found) {
      if (stopped === undefined)
        problems.add(name, 'missing', `listed in ${Member.manifest} but not in the bundle`);
    } else if (found.hex !== hexOf(f.digest as Digest) || found.size !== f.size) {
      problems.add(
        name,
        'digest',
        `does not match its entry in ${Member.manifest} (${f.digest}, ${f.size} bytes)`,
      );
    }
  }
  const files: FileReport[] = [...fileNames].sort().map((path) => {
    const p = problems.about(path);
    return { path, ok: p.length === 0, problems: p };
  });
  for (const part of partReports) {
    part.problems = problems.about(part.name);
    part.ok = part.problems.length === 0;
  }
  for (const [name] of expectedParts ?? []) {
    if (!partReports.some((p) => p.name === name)) {
      partReports.push({ name, ok: false, sha256: null, problems: problems.about(name) });
    }
  }

  const since = lading?.since
    ? { name: lading.since.name, version: lading.since.version, digest: lading.since.digest }
    : null;
  return {
    ok: problems.list.length === 0 && signatureOk,
    bundle: {
      name: lading?.name ?? (typeof ladingRaw?.name === 'string' ? ladingRaw.name : null),
      version: lading?.version ?? (typeof ladingRaw?.version === 'string' ? ladingRaw.version : null),
      path: source.path,
      kind: source.kind,
    },
    signature: { ok: signatureOk, keyFingerprint },
    members: memberCount,
    bytes,
    images,
    charts,
    files,
    parts: partReports,
    expectedAtTarget: [...expectedAtTarget],
    since,
    sumsDigest: sumsBytes ? `sha256:${createHash('sha256').update(sumsBytes).digest('hex')}` : null,
    problems: problems.list,
  };
}
