import { Header, type HeaderData, Pax } from 'tar';
import { InvalidInputError } from '../errors/index.ts';

/**
 * The one tar header codec: 512-byte ustar header blocks and pax records, to bytes and back.
 * Encoding is done by the `tar` package's `Header` and `Pax`, in two dialects:
 *
 * - Lading's bundle headers (`encodeBundleHeader`), whose bytes are a contract — the same
 *   members and mtime give the same bundle, from one version of Lading to the next. `Header`
 *   writes every field but three the way bundles always had them; those three are rewritten
 *   after it (`canonical`), see there.
 * - the `tar` package's own headers (`encodePackageHeader`), as `helm package` archives and
 *   packed charts have them.
 *
 * Decoding (`decodeHeader`, `parsePax`) is strict and does not use `Header`/`Pax.parse`: they are
 * lenient where a bundle reader must refuse, and read some headers differently from GNU tar —
 * the differences file-smuggling attacks live in (see docs/DECISIONS.md, "One tar codec"):
 * numbers are `parseInt`ed (`12x` reads as 10, a bad field as "absent"), base-256 fields may be
 * negative, a name is cut at a NUL only up to the next newline (the pattern `\0.*` has no `s`
 * flag), the ustar prefix is read only with version "00" and is prepended even to a pax path, a
 * directory's size is forced to 0 (hiding data GNU tar reads as a file), and malformed pax
 * records are dropped silently. The block walk (seeking, pax and GNU records, data offsets) is
 * `tar-reader.ts`; the member checks are `tar-safety.ts`.
 */

export const BLOCK = 512;
/** Two zero blocks end the archive. */
export const TAR_END_SIZE = 2 * BLOCK;
/** The largest size in 11 octal digits (8 GiB - 1); larger ones are base-256 plus a pax `size`. */
export const USTAR_MAX_SIZE = 0o77777777777;
const NAME_MAX = 100;

/** `n` rounded up to whole blocks. */
export function padded(n: number): number {
  return Math.ceil(n / BLOCK) * BLOCK;
}

/** The archive is not a tar, or a header is damaged (exit 2). */
export class TarFormatError extends InvalidInputError {
  override readonly code = 'TAR_MALFORMED';
  readonly offset: number;
  constructor(source: string, offset: number, reason: string) {
    super(`${source}: malformed tar at byte ${offset}: ${reason}`, {
      hint: 'the file is not a Lading bundle or it is damaged; get it again from a trusted source',
    });
    this.offset = offset;
  }
}

// ---------------------------------------------------------------------------------------------
// Encoding: Lading's bundle headers

/** What a bundle member's header says; everything else is fixed (uid/gid 0, no user names). */
export interface BundleHeaderFields {
  /** The member path (checked by the caller). */
  path: string;
  type: 'File' | 'Directory';
  size: number;
  mode: number;
  /** Seconds since the epoch (SOURCE_DATE_EPOCH), at most 11 octal digits. */
  mtime: number;
}

function needsPaxPath(path: string): boolean {
  return Buffer.byteLength(path) > NAME_MAX || /[^\x20-\x7e]/.test(path);
}

/** The pax records a bundle member needs (`path`, then `size`), or '' when ustar holds it all. */
function paxBody(path: string, size: number): string {
  return new Pax({
    ...(needsPaxPath(path) ? { path } : {}),
    ...(size > USTAR_MAX_SIZE ? { size } : {}),
  }).encodeBody();
}

/** A name that fits the ustar field: ASCII, at most 100 bytes (pax carries the real one). */
function fallbackName(path: string): string {
  const ascii = path.replace(/[^\x20-\x7e]/g, '_');
  return ascii.length <= NAME_MAX ? ascii : ascii.slice(ascii.length - NAME_MAX);
}

/** `value` as `width - 1` zero-padded octal digits and a NUL, the form bundles have. */
function writeOctal(block: Buffer, at: number, width: number, value: number): void {
  const s = `${value.toString(8).padStart(width - 1, '0')}\0`;
  if (s.length > width) throw new Error(`tar header field overflow: ${value}`);
  block.write(s, at, width, 'latin1');
}

/**
 * Rewrite what `Header.encode` writes differently from the bundle format, so bundles keep their
 * bytes (pinned by test/tar-bytes.test.ts):
 * 1. numbers: `Header` writes `000644 \0` (space and NUL), bundles have `0000644\0`; the numeric
 *    fields are written again, the checksum as six digits, NUL, space (`Header`: `012345 \0`);
 *    a size beyond 11 octal digits stays as `Header` wrote it (base-256, the same bytes);
 * 2. a name of exactly 100 bytes: `Header` moves its folder (or `.`) into the ustar prefix field,
 *    bundles have the whole name in the name field and no prefix.
 */
function canonical(block: Buffer, f: { name: string; size: number; mode: number; mtime: number }): void {
  writeOctal(block, 100, 8, f.mode);
  writeOctal(block, 108, 8, 0); // uid
  writeOctal(block, 116, 8, 0); // gid
  if (f.size <= USTAR_MAX_SIZE) writeOctal(block, 124, 12, f.size);
  writeOctal(block, 136, 12, f.mtime);
  writeOctal(block, 329, 8, 0); // devmajor
  writeOctal(block, 337, 8, 0); // devminor
  if (Buffer.byteLength(f.name) === NAME_MAX) {
    block.fill(0, 345, 500);
    block.write(f.name, 0, NAME_MAX, 'latin1');
  }
  block.fill(0x20, 148, 156); // the checksum field counts as spaces
  let sum = 0;
  for (const b of block) sum += b;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
}

function bundleBlock(f: {
  name: string;
  type: 'File' | 'Directory' | 'ExtendedHeader';
  size: number;
  mode: number;
  mtime: number;
}): Buffer {
  const block = Buffer.alloc(BLOCK);
  new Header({
    path: f.name,
    type: f.type,
    mode: f.mode,
    uid: 0,
    gid: 0,
    size: f.size,
    mtime: new Date(f.mtime * 1000),
    linkpath: '',
    uname: '',
    gname: '',
    devmaj: 0,
    devmin: 0,
  }).encode(block);
  canonical(block, f);
  return block;
}

/**
 * The header block(s) of a bundle member: a pax header (`x`, named `PaxHeaders/<base name>`) and
 * its records when the name does not fit ustar (over 100 bytes, or not ASCII) or the size is over
 * 8 GiB - 1, then the ustar header.
 */
export function encodeBundleHeader(f: BundleHeaderFields): Buffer {
  const blocks: Buffer[] = [];
  const body = paxBody(f.path, f.size);
  if (body !== '') {
    const records = Buffer.from(body, 'utf8');
    const base = f.path.replace(/\/$/, '').split('/').pop() ?? 'entry';
    blocks.push(
      bundleBlock({
        name: fallbackName(`PaxHeaders/${base}`),
        type: 'ExtendedHeader',
        size: records.length,
        mode: 0o644,
        mtime: f.mtime,
      }),
      records,
      Buffer.alloc(padded(records.length) - records.length),
    );
  }
  blocks.push(bundleBlock({ ...f, name: fallbackName(f.path) }));
  return Buffer.concat(blocks);
}

/** Bytes of a bundle member's header blocks (pax included), without encoding them. */
export function bundleHeaderSize(path: string, size: number): number {
  const body = paxBody(path, size);
  return (body === '' ? 0 : BLOCK + padded(Buffer.byteLength(body))) + BLOCK;
}

// ---------------------------------------------------------------------------------------------
// Encoding: the `tar` package's own headers (chart archives)

export type TarTypeName =
  | 'File'
  | 'Directory'
  | 'SymbolicLink'
  | 'Link'
  | 'CharacterDevice'
  | 'BlockDevice'
  | 'FIFO';

export interface PackageHeaderFields {
  path: string;
  type: TarTypeName;
  size: number;
  mode: number;
  mtime: Date;
  linkpath?: string;
  devmaj?: number;
  devmin?: number;
}

/**
 * A header as the `tar` package writes it (uid/gid 0, no user names): the ustar block, after a
 * pax header (`PaxHeader/<base name>`, with `path`, `linkpath` and `mtime`) when `Header` says it
 * needs one.
 */
export function encodePackageHeader(f: PackageHeaderFields): Buffer {
  const block = Buffer.alloc(BLOCK);
  const needPax = new Header({
    path: f.path,
    mode: f.mode,
    uid: 0,
    gid: 0,
    size: f.size,
    mtime: f.mtime,
    type: f.type,
    linkpath: f.linkpath ?? '',
    uname: '',
    gname: '',
    devmaj: f.devmaj ?? 0,
    devmin: f.devmin ?? 0,
  }).encode(block, 0);
  if (!needPax) return block;
  const pax: HeaderData = { path: f.path, mtime: f.mtime };
  if (f.linkpath !== undefined) pax.linkpath = f.linkpath;
  return Buffer.concat([new Pax(pax).encode(), block]);
}

// ---------------------------------------------------------------------------------------------
// Decoding (strict)

/** Typeflags of records that describe the next member (pax, GNU long names), not members. */
export const EXTENSION_TYPES: ReadonlySet<string> = new Set(['x', 'g', 'L', 'K']);

/** The fields of one header block, as written (no pax or GNU record applied). */
export interface DecodedHeader {
  /** The raw typeflag character (`\0` for old files). */
  typeflag: string;
  /** ustar prefix + name (the prefix only with the `ustar\0` magic), cut at the first NUL. */
  name: string;
  linkname: string;
  /** The size field (octal or GNU base-256). */
  size: number;
  mode: number;
}

export function isZeroBlock(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/** A string field up to its first NUL (or its whole width). */
function cstring(b: Buffer, start: number, len: number): string {
  const field = b.subarray(start, start + len);
  const nul = field.indexOf(0);
  return field.subarray(0, nul < 0 ? field.length : nul).toString('utf8');
}

/** An octal field, or GNU base-256 (high bit of the first byte set); never negative. */
function numeric(
  b: Buffer,
  start: number,
  len: number,
  what: string,
  offset: number,
  source: string,
): number {
  const field = b.subarray(start, start + len);
  if (field[0] !== undefined && (field[0] & 0x80) !== 0) {
    if (field[0] === 0xff) throw new TarFormatError(source, offset, `negative ${what}`);
    let v = field[0] & 0x7f;
    for (let i = 1; i < field.length; i++) {
      v = v * 256 + (field[i] as number);
      if (v > Number.MAX_SAFE_INTEGER) throw new TarFormatError(source, offset, `${what} too large`);
    }
    return v;
  }
  const s = field.toString('latin1').replace(/\0.*$/s, '').trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s))
    throw new TarFormatError(source, offset, `${what} field is not octal: ${JSON.stringify(s)}`);
  const v = Number.parseInt(s, 8);
  if (!Number.isSafeInteger(v)) throw new TarFormatError(source, offset, `${what} too large`);
  return v;
}

/** The stored checksum matches the block (unsigned, or signed as some old tars summed). */
function checksumOk(b: Buffer, offset: number, source: string): boolean {
  const stored = numeric(b, 148, 8, 'checksum', offset, source);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const v = i >= 148 && i < 156 ? 0x20 : (b[i] as number);
    unsigned += v;
    signed += v > 127 ? v - 256 : v;
  }
  return stored === unsigned || stored === signed;
}

/**
 * Decode one (non-zero) header block at `offset` of `source`: the checksum must match and every
 * numeric field must be octal or positive base-256 (TarFormatError otherwise).
 */
export function decodeHeader(block: Buffer, offset: number, source: string): DecodedHeader {
  if (!checksumOk(block, offset, source)) {
    throw new TarFormatError(source, offset, 'header checksum mismatch (not a tar, or a damaged header)');
  }
  const typeflag = String.fromCharCode(block[156] as number);
  const size = numeric(block, 124, 12, 'size', offset, source);
  const magic = block.subarray(257, 263).toString('latin1');
  const prefix = magic === 'ustar\0' ? cstring(block, 345, 155) : '';
  const name = cstring(block, 0, 100);
  return {
    typeflag,
    name: prefix ? `${prefix}/${name}` : name,
    linkname: cstring(block, 157, 100),
    size,
    // pax and GNU records are not members: their mode is never read (nor refused)
    mode: EXTENSION_TYPES.has(typeflag) ? 0 : numeric(block, 100, 8, 'mode', offset, source),
  };
}

/** Parse pax extended header records, `<len> <key>=<value>\n`; a malformed one is refused. */
export function parsePax(data: Buffer, source = 'tar', offset = 0): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < data.length) {
    if (data[i] === 0) break; // padding
    const sp = data.indexOf(0x20, i);
    if (sp < 0) throw new TarFormatError(source, offset, 'pax record without a length');
    const lenText = data.subarray(i, sp).toString('latin1');
    if (!/^[0-9]+$/.test(lenText))
      throw new TarFormatError(source, offset, 'pax record length is not a number');
    const len = Number.parseInt(lenText, 10);
    if (len <= sp - i + 1 || i + len > data.length || data[i + len - 1] !== 0x0a) {
      throw new TarFormatError(source, offset, 'pax record length does not match its content');
    }
    const record = data.subarray(sp + 1, i + len - 1);
    const eq = record.indexOf(0x3d);
    if (eq < 0) throw new TarFormatError(source, offset, 'pax record without "="');
    out[record.subarray(0, eq).toString('utf8')] = record.subarray(eq + 1).toString('utf8');
    i += len;
  }
  return out;
}
