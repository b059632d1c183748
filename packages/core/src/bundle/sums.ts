import { InvalidInputError } from '../errors/index.ts';

/**
 * SHA256SUMS in coreutils format: one `<64 lowercase hex>  <path>\n` line per member, in member
 * order. `sha256sum -c SHA256SUMS` checks it. The parts checksum file of a split bundle
 * (`NAME.tar.sha256`) uses the same format over the part file names.
 */

export interface SumsEntry {
  path: string;
  /** Lowercase hex sha256 of the member. */
  hex: string;
}

export interface ParsedSumsEntry extends SumsEntry {
  /** The line used the `*` (binary) marker instead of a space. */
  binary: boolean;
}

export class InvalidSumsError extends InvalidInputError {
  override readonly code = 'INVALID_SUMS';
  readonly source: string;
  readonly line: number | undefined;
  constructor(source: string, line: number | undefined, reason: string) {
    super(`${source}${line === undefined ? '' : `, line ${line}`}: ${reason}`, {
      hint: 'the checksum file is malformed or was edited; get the bundle again from a trusted source',
    });
    this.source = source;
    this.line = line;
  }
}

const HEX64 = /^[0-9a-f]{64}$/;
const LINE = /^([0-9a-f]{64}) ([ *])(.+)$/;

/** Paths we write must need no coreutils escaping (no newline, no backslash, no CR). */
function checkPath(path: string, source: string, line?: number): void {
  if (path.length === 0) throw new InvalidSumsError(source, line, 'empty path');
  if (/[\n\r\\]/.test(path)) {
    throw new InvalidSumsError(source, line, `path ${JSON.stringify(path)} contains a newline or backslash`);
  }
}

/** Format entries as coreutils sha256sum output, in the given order. */
export function formatSums(entries: readonly SumsEntry[], source = 'SHA256SUMS'): string {
  const seen = new Set<string>();
  let out = '';
  for (const e of entries) {
    if (!HEX64.test(e.hex))
      throw new InvalidSumsError(source, undefined, `not a sha256 hex digest: ${e.hex}`);
    checkPath(e.path, source);
    if (seen.has(e.path)) throw new InvalidSumsError(source, undefined, `duplicate path ${e.path}`);
    seen.add(e.path);
    out += `${e.hex}  ${e.path}\n`;
  }
  return out;
}

/**
 * Parse a SHA256SUMS file strictly: every line must be `<hex>  <path>` or `<hex> *<path>`, hex in
 * lowercase, the file ends with a newline, no blank lines, no escaped names, no duplicate paths.
 */
export function parseSums(text: string | Uint8Array, source = 'SHA256SUMS'): ParsedSumsEntry[] {
  const s = typeof text === 'string' ? text : Buffer.from(text).toString('utf8');
  if (s.length === 0) return [];
  if (!s.endsWith('\n')) throw new InvalidSumsError(source, undefined, 'does not end with a newline');
  const lines = s.slice(0, -1).split('\n');
  const seen = new Set<string>();
  const out: ParsedSumsEntry[] = [];
  lines.forEach((line, i) => {
    const n = i + 1;
    const m = LINE.exec(line);
    if (!m) {
      throw new InvalidSumsError(
        source,
        n,
        line.length === 0
          ? 'blank line'
          : `expected "<64 lowercase hex>  <path>", got ${JSON.stringify(line.slice(0, 120))}`,
      );
    }
    const [, hex, marker, path] = m as unknown as [string, string, string, string];
    checkPath(path, source, n);
    if (seen.has(path)) throw new InvalidSumsError(source, n, `duplicate path ${path}`);
    seen.add(path);
    out.push({ hex, path, binary: marker === '*' });
  });
  return out;
}
