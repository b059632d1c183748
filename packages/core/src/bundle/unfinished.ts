import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import {
  type FileHandle,
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  writeFile,
} from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import type { CallOptions, ReadOnlyStorage } from '../content/index.ts';
import { throwIfAborted } from '../errors/index.ts';
import type { Descriptor } from '../model/index.ts';
import { alive, tmpName } from '../util/atomic-file.ts';

/**
 * What an interrupted bundle writer leaves behind, made useful: while it writes, `PlacedOutput`
 * keeps a journal beside its temporaries (`.NAME.tar.journal.tmp-<pid>-<random>`): the
 * temporaries (names relative to the journal's folder) and their place in the tar on the first
 * line, then one line per blob written completely (`<digest> <offset> <size>`). A kill -9 leaves
 * them where they are; an orderly stop (Ctrl-C, an error) moves them out of the output folder
 * into a parking folder (`park`), so nothing is left beside the output. No fsync: a kill -9
 * leaves the bytes in the page cache, and whatever is read back is verified by the bundle it goes
 * into (after a power loss a bad range fails verification and the copy fetches the blob from its
 * registry instead). `findUnfinished` turns the journals of dead writers into a store that
 * serves those blobs.
 */

interface JournalPart {
  /** File name, in the journal's folder. */
  name: string;
  start: number;
  size: number;
}

interface Segment {
  path: string;
  start: number;
  length: number;
}

/** The journal name of an output's temporaries: `.NAME.tar.journal.tmp-<pid>-<random>`. */
function journalName(final: string): string {
  return tmpName(join(dirname(final), `${basename(final)}.journal`));
}

const JOURNAL = /\.journal\.tmp-(\d+)-[0-9a-f]+$/;

export class BlobJournal {
  readonly path: string;
  private readonly fh: FileHandle;
  private at: number;
  private chain: Promise<void> = Promise.resolve();

  private constructor(path: string, fh: FileHandle, at: number) {
    this.path = path;
    this.fh = fh;
    this.at = at;
  }

  static async create(
    final: string,
    parts: ReadonlyArray<{ path: string; start: number; size: number }>,
  ): Promise<BlobJournal> {
    const path = journalName(final);
    const fh = await open(path, 'wx', 0o644);
    const named = parts.map((p) => ({ name: basename(p.path), start: p.start, size: p.size }));
    const head = Buffer.from(`${JSON.stringify({ parts: named })}\n`);
    await fh.write(head, 0, head.length, 0);
    return new BlobJournal(path, fh, head.length);
  }

  /** A blob is written completely at `offset` of the tar. */
  record(digest: string, offset: number, size: number): Promise<void> {
    const line = Buffer.from(`${digest} ${offset} ${size}\n`);
    const at = this.at;
    this.at += line.length;
    this.chain = this.chain.then(async () => {
      await this.fh.write(line, 0, line.length, at);
    });
    return this.chain;
  }

  async close(): Promise<void> {
    await this.chain.catch(() => {});
    await this.fh.close().catch(() => {});
  }

  /**
   * Move the journal and its temporaries into `dir` (created if needed) under new names; false
   * when they cannot be moved there (another file system): the caller removes them.
   */
  async park(dir: string, temps: readonly string[]): Promise<boolean> {
    await this.close();
    const id = randomBytes(6).toString('hex');
    try {
      await mkdir(dir, { recursive: true });
      const text = await readFile(this.path, 'utf8');
      const nl = text.indexOf('\n');
      const head = JSON.parse(text.slice(0, nl)) as { parts: JournalPart[] };
      const moved: string[] = [];
      try {
        for (const [i, t] of temps.entries()) {
          const name = `${id}.${String(i).padStart(3, '0')}`;
          await rename(t, join(dir, name));
          moved.push(join(dir, name));
          const part = head.parts.find((p) => p.name === basename(t));
          if (part) part.name = name;
        }
      } catch (err) {
        for (const m of moved) await rm(m, { force: true });
        throw err;
      }
      await writeFile(join(dir, `${id}.journal`), `${JSON.stringify(head)}${text.slice(nl)}`);
      await rm(this.path, { force: true });
      return true;
    } catch {
      return false;
    }
  }
}

/** Blobs a killed writer of the same output finished, served from its temporaries. */
export class UnfinishedBlobs implements ReadOnlyStorage {
  /** The journals and temporaries read from: remove them once the new output is committed. */
  readonly files: string[];
  private readonly blobs: Map<string, { size: number; segments: Segment[] }>;

  constructor(files: string[], blobs: Map<string, { size: number; segments: Segment[] }>) {
    this.files = files;
    this.blobs = blobs;
  }

  get count(): number {
    return this.blobs.size;
  }

  async exists(desc: Descriptor, opts: CallOptions = {}): Promise<boolean> {
    throwIfAborted(opts.signal);
    return this.blobs.get(desc.digest)?.size === desc.size;
  }

  async fetch(desc: Descriptor, opts: CallOptions = {}): Promise<Readable> {
    throwIfAborted(opts.signal);
    const b = this.blobs.get(desc.digest);
    if (!b || b.size !== desc.size) throw new Error(`${desc.digest} is not in an unfinished bundle`);
    const out = new PassThrough();
    void (async () => {
      for (const s of b.segments) {
        if (s.length === 0) continue;
        const r = createReadStream(s.path, {
          start: s.start,
          end: s.start + s.length - 1,
          highWaterMark: 1024 * 1024,
        });
        for await (const c of r) if (!out.write(c)) await new Promise((ok) => out.once('drain', ok));
      }
      out.end();
    })().catch((err: unknown) => out.destroy(err as Error));
    return out;
  }
}

/** Where bytes [offset, offset+size) of the tar lie in the parts. */
function segmentsOf(
  parts: ReadonlyArray<{ path: string; start: number; size: number }>,
  offset: number,
  size: number,
): Segment[] | undefined {
  const out: Segment[] = [];
  let at = offset;
  const end = offset + size;
  for (const p of parts) {
    if (at >= end) break;
    if (at < p.start || at >= p.start + p.size) continue;
    const n = Math.min(end, p.start + p.size) - at;
    out.push({ path: p.path, start: at - p.start, length: n });
    at += n;
  }
  return at === end ? out : undefined;
}

/** The journal files of dead writers of `final` beside it, and every journal parked in `park`. */
async function journals(final: string, park: string | undefined): Promise<string[]> {
  const list = async (dir: string) =>
    readdir(dir).then(
      (n) => n.sort(),
      () => [] as string[],
    );
  const out: string[] = [];
  const prefix = `.${basename(final)}.journal.tmp-`;
  for (const name of await list(dirname(final))) {
    const m = JOURNAL.exec(name);
    if (name.startsWith(prefix) && m && Number(m[1]) !== process.pid && !alive(Number(m[1])))
      out.push(join(dirname(final), name));
  }
  if (park) for (const name of await list(park)) if (name.endsWith('.journal')) out.push(join(park, name));
  return out;
}

/**
 * The blobs that interrupted writers of `final` finished (their journals beside it, and those
 * parked in `park`), or undefined when there are none. A journal whose temporaries are missing or
 * have another size is ignored.
 */
export async function findUnfinished(final: string, park?: string): Promise<UnfinishedBlobs | undefined> {
  const files: string[] = [];
  const blobs = new Map<string, { size: number; segments: Segment[] }>();
  for (const path of await journals(final, park)) {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch {
      continue;
    }
    const lines = text.split('\n');
    const parts: Array<{ path: string; start: number; size: number }> = [];
    try {
      for (const p of (JSON.parse(lines[0] ?? '') as { parts: JournalPart[] }).parts) {
        const file = join(dirname(path), basename(p.name));
        if ((await stat(file)).size !== p.size) throw new Error('size');
        parts.push({ path: file, start: p.start, size: p.size });
      }
    } catch {
      continue;
    }
    files.push(path, ...parts.map((p) => p.path));
    for (const line of lines.slice(1)) {
      const [digest, offset, size] = line.split(' ');
      if (!digest || !/^sha256:[0-9a-f]{64}$/.test(digest) || blobs.has(digest)) continue;
      const segments = segmentsOf(parts, Number(offset), Number(size));
      if (segments) blobs.set(digest, { size: Number(size), segments });
    }
  }
  return files.length > 0 ? new UnfinishedBlobs(files, blobs) : undefined;
}
