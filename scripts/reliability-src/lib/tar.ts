/**
 * A small, independent tar reader/writer for the tamper matrix and the attack corpus: it keeps each
 * member's raw header so a mutation changes only what it means to change, and it writes whatever it
 * is told (traversal, links, devices, lying sizes) — that is the point.
 */

export interface Member {
  /** Raw pax extended header member(s) that precede this one, kept verbatim. */
  prefix: Buffer[];
  header: Buffer;
  data: Buffer;
  /** Where the data starts in the archive it was read from (parseTar only). */
  dataOffset?: number;
}

export function memberName(m: Member): string {
  const h = m.header;
  const name = h.subarray(0, 100).toString('utf8').replace(/\0.*$/s, '');
  const prefix = h.subarray(345, 500).toString('utf8').replace(/\0.*$/s, '');
  let n = prefix ? `${prefix}/${name}` : name;
  for (const p of m.prefix) {
    const m2 = /\d+ path=([^\n]*)\n/.exec(p.subarray(512).toString('utf8'));
    if (m2) n = m2[1]!;
  }
  return n.replace(/^\.\//, '');
}

function readOctal(b: Buffer): number {
  if (b[0]! & 0x80) {
    // base-256
    let v = 0;
    for (let i = 1; i < b.length; i++) v = v * 256 + b[i]!;
    return v;
  }
  const s = b
    .toString('ascii')
    .replace(/[\0 ]+$/g, '')
    .trim();
  return s ? parseInt(s, 8) : 0;
}

const pad = (n: number): number => (512 - (n % 512)) % 512;

/** Parses a tar held in memory (ustar/pax). Stops at the first zero block. */
export function parseTar(buf: Buffer): Member[] {
  const out: Member[] = [];
  let off = 0;
  let prefix: Buffer[] = [];
  while (off + 512 <= buf.length) {
    const header = buf.subarray(off, off + 512);
    if (header.every((b) => b === 0)) break;
    const size = readOctal(header.subarray(124, 136));
    const type = String.fromCharCode(header[156]!);
    const dataEnd = off + 512 + size;
    if (type === 'x' || type === 'g') {
      prefix.push(Buffer.from(buf.subarray(off, dataEnd + pad(size))));
    } else {
      out.push({
        prefix,
        header: Buffer.from(header),
        data: Buffer.from(buf.subarray(off + 512, dataEnd)),
        dataOffset: off + 512,
      });
      prefix = [];
    }
    off = dataEnd + pad(size);
  }
  return out;
}

function octal(v: number, width: number): string {
  return v.toString(8).padStart(width - 1, '0') + '\0';
}

function checksum(h: Buffer): void {
  h.write('        ', 148, 'ascii');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
}

/** Writes members back; each header's size is set to its data's length unless `declaredSize` says otherwise. */
export function buildTar(
  members: (Member & { declaredSize?: number })[],
  opts: { end?: boolean } = {},
): Buffer {
  const parts: Buffer[] = [];
  for (const m of members) {
    for (const p of m.prefix) parts.push(p);
    const h = Buffer.from(m.header);
    const size = m.declaredSize ?? m.data.length;
    if (size > 0o77777777777) {
      // base-256 for sizes beyond 8 GiB
      const field = Buffer.alloc(12, 0);
      field[0] = 0x80;
      let v = size;
      for (let i = 11; i > 0; i--) {
        field[i] = v % 256;
        v = Math.floor(v / 256);
      }
      field.copy(h, 124);
    } else {
      h.write(octal(size, 12), 124, 'ascii');
    }
    checksum(h);
    parts.push(h, m.data, Buffer.alloc(pad(m.data.length), 0));
  }
  if (opts.end !== false) parts.push(Buffer.alloc(1024, 0));
  return Buffer.concat(parts);
}

export interface NewMember {
  name: string;
  /** '0' file, '1' hard link, '2' symlink, '3' char device, '4' block device, '5' dir, '6' fifo */
  type?: string;
  data?: Buffer | string;
  linkname?: string;
  mode?: number;
  devmajor?: number;
  devminor?: number;
  /** Size written in the header when it must differ from the data (a lying header). */
  declaredSize?: number;
}

/** A member made from scratch (ustar; names up to 100 bytes, longer ones through a pax path record). */
export function member(n: NewMember): Member & { declaredSize?: number } {
  const h = Buffer.alloc(512, 0);
  const prefix: Buffer[] = [];
  const nameBytes = Buffer.from(n.name, 'utf8');
  if (nameBytes.length > 100) {
    const rec = (s: string): string => {
      let len = s.length + 3;
      while (`${len} ${s}\n`.length !== len) len = `${len} ${s}\n`.length;
      return `${len} ${s}\n`;
    };
    const body = Buffer.from(rec(`path=${n.name}`), 'utf8');
    const ph = Buffer.alloc(512, 0);
    ph.write('PaxHeaders/x', 0, 100, 'utf8');
    ph.write(octal(0o644, 8), 100, 'ascii');
    ph.write(octal(0, 8), 108, 'ascii');
    ph.write(octal(0, 8), 116, 'ascii');
    ph.write(octal(body.length, 12), 124, 'ascii');
    ph.write(octal(0, 12), 136, 'ascii');
    ph.write('x', 156, 'ascii');
    ph.write('ustar\0', 257, 'ascii');
    ph.write('00', 263, 'ascii');
    checksum(ph);
    prefix.push(Buffer.concat([ph, body, Buffer.alloc(pad(body.length), 0)]));
  }
  h.write(n.name.slice(0, 100), 0, 100, 'utf8');
  const type = n.type ?? '0';
  h.write(octal(n.mode ?? (type === '5' ? 0o755 : 0o644), 8), 100, 'ascii');
  h.write(octal(0, 8), 108, 'ascii');
  h.write(octal(0, 8), 116, 'ascii');
  h.write(octal(0, 12), 136, 'ascii');
  h.write(type, 156, 'ascii');
  if (n.linkname) h.write(n.linkname, 157, 100, 'utf8');
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  if (n.devmajor !== undefined) h.write(octal(n.devmajor, 8), 329, 'ascii');
  if (n.devminor !== undefined) h.write(octal(n.devminor, 8), 337, 'ascii');
  const data = Buffer.from(n.data ?? '');
  const m: Member & { declaredSize?: number } = { prefix, header: h, data };
  if (n.declaredSize !== undefined) m.declaredSize = n.declaredSize;
  return m;
}
