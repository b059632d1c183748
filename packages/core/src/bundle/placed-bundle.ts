import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { CallOptions, Storage } from '../content/index.ts';
import { type Digest, DigestMismatchError, SizeMismatchError } from '../digest/index.ts';
import { AbortedError, throwIfAborted } from '../errors/index.ts';
import type { Descriptor } from '../model/index.ts';
import { WriteGatherer } from '../util/index.ts';
import type { PlacedOutput } from './placed-output.ts';
import type { BundlePlan, PlannedMember } from './plan.ts';
import { TAR_END_SIZE } from './tar-header.ts';

/**
 * A bundle being written, seen as a content store (a `Storage`), so that the copy engine moves
 * blobs into it as it moves them into a registry or a layout: `push` writes a blob at the offset
 * its plan gave it, verifying size and digest as the bytes flow, and marks the member complete
 * only when they matched; `exists` is true for a blob that is written, or that the plan leaves
 * out (a differential bundle's base holds it): nothing to do. Completed members let the output's
 * hasher read everything below the first incomplete one (`PlacedOutput.settle`).
 */

const READ_CHUNK = 1024 * 1024;
/**
 * Members at least this large are verified by reading back what was written, on a worker of the
 * output's hash pool (`PlacedOutput.hashRange`), so the main thread only receives and writes;
 * smaller ones are hashed as they stream (a worker round trip would cost more than the hash).
 */
const VERIFY_ON_WORKER = 1024 * 1024;

export interface PlacedBundleProgress {
  /** The member whose bytes moved. */
  member: string;
  /** Bytes of the tar written so far (each byte once, however many attempts) and in all. */
  bytesDone: number;
  bytesTotal: number;
  membersDone: number;
  membersTotal: number;
}

export class PlacedBundle implements Storage {
  readonly plan: BundlePlan;
  private readonly output: PlacedOutput;
  private readonly blobs = new Map<string, PlannedMember>();
  private readonly complete: boolean[];
  /** Per member: the furthest byte written in any attempt (progress counts each byte once). */
  private readonly reached: number[];
  private next = 0;
  private bytesDone = 0;
  private membersDone = 0;
  private readonly onProgress: ((p: PlacedBundleProgress) => void) | undefined;

  constructor(
    plan: BundlePlan,
    output: PlacedOutput,
    opts: { onProgress?: (p: PlacedBundleProgress) => void } = {},
  ) {
    this.plan = plan;
    this.output = output;
    this.onProgress = opts.onProgress;
    for (const m of plan.members) if (m.data.kind === 'blob') this.blobs.set(m.data.desc.digest, m);
    this.complete = plan.members.map(() => false);
    this.reached = plan.members.map(() => 0);
  }

  /** Write every header and the end-of-archive blocks (before any data). */
  async writeHeaders(): Promise<void> {
    for (const m of this.plan.members) await this.output.writeAt(m.headerOffset, m.header);
    await this.output.writeAt(this.plan.size - TAR_END_SIZE, Buffer.alloc(TAR_END_SIZE));
    this.bytesDone += TAR_END_SIZE;
  }

  /** Whether every member is complete (the output may be committed). */
  get done(): boolean {
    return this.next === this.plan.members.length;
  }

  async exists(desc: Descriptor, opts: CallOptions = {}): Promise<boolean> {
    throwIfAborted(opts.signal);
    const m = this.blobs.get(desc.digest);
    return !m || this.complete[m.index] === true;
  }

  /** A complete blob, read back from the output. */
  async fetch(desc: Descriptor, opts: CallOptions = {}): Promise<Readable> {
    throwIfAborted(opts.signal);
    const m = this.blobs.get(desc.digest);
    if (!m || !this.complete[m.index]) throw new Error(`${desc.digest} is not written to the bundle (yet)`);
    const output = this.output;
    return Readable.from(
      (async function* () {
        for (let at = 0; at < m.size; at += READ_CHUNK) {
          throwIfAborted(opts.signal);
          yield await output.readAt(m.dataOffset + at, Math.min(READ_CHUNK, m.size - at));
        }
      })(),
      { objectMode: false },
    );
  }

  /** Write a planned blob at its place; verified (size, digest) before it counts as written. */
  async push(desc: Descriptor, content: Readable, opts: CallOptions = {}): Promise<void> {
    try {
      const m = this.blobs.get(desc.digest);
      if (!m || this.complete[m.index]) return;
      await this.fill(m, content, { digest: desc.digest, size: m.size }, opts);
    } finally {
      content.destroy();
    }
  }

  /**
   * Write a member's data from `content` at its offset, counting its size as it goes, and check
   * its digest: hashed as it streams (small members) or read back from the output once written
   * (large ones, on a worker: see VERIFY_ON_WORKER). On success pad it, mark it complete and let
   * the output's hasher move on. On a mismatch nothing counts (a retry writes it again).
   */
  async fill(
    m: PlannedMember,
    content: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    expected: { digest: Digest; size: number },
    opts: CallOptions = {},
  ): Promise<void> {
    const source = `${m.path} of ${this.output.path}`;
    const hash = m.size >= VERIFY_ON_WORKER ? undefined : createHash('sha256');
    let seen = 0;
    let written = 0;
    const gather = new WriteGatherer(async (piece) => {
      await this.output.writeAt(m.dataOffset + written, piece);
      written += piece.length;
      this.advance(m, written);
    });
    try {
      for await (const chunk of content) {
        throwIfAborted(opts.signal);
        seen += chunk.length;
        if (seen > expected.size)
          throw new SizeMismatchError(expected.digest, expected.size, seen, source, true);
        hash?.update(chunk);
        await gather.add(chunk);
      }
    } catch (err) {
      if (opts.signal?.aborted && !(err instanceof AbortedError)) {
        throw new AbortedError(`writing ${m.path} aborted`, { cause: opts.signal.reason });
      }
      throw err;
    }
    await gather.flush();
    if (seen !== expected.size)
      throw new SizeMismatchError(expected.digest, expected.size, seen, source, false);
    const actual = hash
      ? (`sha256:${hash.digest('hex')}` as Digest)
      : await this.output.hashRange(m.dataOffset, m.size, opts);
    if (actual !== expected.digest) throw new DigestMismatchError(expected.digest, actual, source);
    if (this.complete[m.index]) return;
    if (m.padding > 0) await this.output.writeAt(m.dataOffset + m.size, Buffer.alloc(m.padding));
    if (m.data.kind === 'blob') await this.output.recordBlob(expected.digest, m.dataOffset, m.size);
    this.complete[m.index] = true;
    this.membersDone++;
    this.bytesDone += m.header.length + m.padding;
    while (this.next < this.plan.members.length && this.complete[this.next]) this.next++;
    this.output.settle(this.done ? this.plan.size : this.plan.members[this.next]!.headerOffset);
    this.report(m);
  }

  private advance(m: PlannedMember, to: number): void {
    if (to <= this.reached[m.index]!) return;
    this.bytesDone += to - this.reached[m.index]!;
    this.reached[m.index] = to;
    this.report(m);
  }

  private report(m: PlannedMember): void {
    this.onProgress?.({
      member: m.path,
      bytesDone: this.bytesDone,
      bytesTotal: this.plan.size,
      membersDone: this.membersDone,
      membersTotal: this.plan.members.length,
    });
  }
}
