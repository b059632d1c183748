import assert from 'node:assert/strict';
import { Header } from 'tar';
import {
  decodeHeader,
  encodeBundleHeader,
  encodePackageHeader,
  parsePax,
  TarFormatError,
} from '../src/bundle/tar-header.ts';

/**
 * The one tar codec decodes strictly, where the `tar` package's `Header` is lenient or reads a
 * header differently from GNU tar (issue 11). Each case below is one of those differences.
 */

/** A header block from `Header`, then `edit`ed, with its checksum made right again. */
function forged(
  edit: (b: Buffer) => void,
  fields: Partial<ConstructorParameters<typeof Header>[0] & object> = {},
) {
  const b = Buffer.alloc(512);
  new Header({ path: 'dir/file', type: 'File', mode: 0o644, size: 5, mtime: new Date(0), ...fields }).encode(
    b,
  );
  edit(b);
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const x of b) sum += x;
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  return b;
}

const refused = (b: Buffer, why: RegExp) =>
  assert.throws(
    () => decodeHeader(b, 1024, 'x.tar'),
    (err: unknown) => err instanceof TarFormatError && err.offset === 1024 && why.test(err.message),
  );

describe('tar header codec', () => {
  it('decodes what it encodes, and the tar package reads the same fields', () => {
    const block = encodeBundleHeader({
      path: 'blobs/sha256/abc',
      type: 'File',
      size: 1234,
      mode: 0o644,
      mtime: 99,
    });
    assert.equal(block.length, 512);
    assert.deepEqual(decodeHeader(block, 0, 'x'), {
      typeflag: '0',
      name: 'blobs/sha256/abc',
      linkname: '',
      size: 1234,
      mode: 0o644,
    });
    const h = new Header(block);
    assert.equal(h.cksumValid, true);
    assert.equal(h.path, 'blobs/sha256/abc');
    assert.equal(h.size, 1234);
    assert.equal(h.mtime?.getTime(), 99_000);
  });

  it('a bad checksum is refused', () => {
    const b = forged(() => {});
    b[0] = 'e'.charCodeAt(0);
    refused(b, /checksum mismatch/);
  });

  it('a size field that is not octal is refused (Header parseInts "12x" as 10)', () => {
    const b = forged((x) => x.write('0000000012x\0', 124, 12, 'latin1'));
    assert.equal(new Header(b).size, 10);
    refused(b, /size field is not octal/);
    refused(
      forged((x) => x.write('0000009\0', 100, 8, 'latin1')),
      /mode field is not octal/,
    );
  });

  it('a negative base-256 size is refused (Header reads it as a number)', () => {
    const b = forged((x) => {
      x.fill(0xff, 124, 136);
    });
    assert.equal(new Header(b).size, undefined); // dropped silently, the entry goes on
    refused(b, /negative size/);
  });

  it('a name ends at its first NUL, also before a newline (Header keeps what follows the newline)', () => {
    const b = forged((x) => {
      x.fill(0, 0, 100);
      x.write('safe\0x\nevil', 0, 'latin1');
    });
    assert.match(new Header(b).path ?? '', /^safe\nevil/);
    assert.equal(decodeHeader(b, 0, 'x').name, 'safe');
  });

  it('reads the ustar prefix with the "ustar\\0" magic whatever the version, as GNU tar does', () => {
    const b = forged((x) => {
      x.write('pre', 345, 'latin1');
      x.write('  ', 263, 2, 'latin1'); // version "  " instead of "00"
    });
    assert.equal(new Header(b).path, 'dir/file');
    assert.equal(decodeHeader(b, 0, 'x').name, 'pre/dir/file');
  });

  it('keeps a type-0 "directory" name\'s size (Header forces it to 0, hiding data GNU tar reads)', () => {
    const b = forged(() => {}, { path: 'dir/', type: 'File', size: 512 });
    assert.equal(new Header(b).size, 0);
    assert.equal(decodeHeader(b, 0, 'x').size, 512);
  });

  it("a pax or GNU record's mode is never read", () => {
    const b = forged((x) => x.write('zzzzzzz\0', 100, 8, 'latin1'), { type: 'ExtendedHeader' });
    assert.equal(decodeHeader(b, 0, 'x').typeflag, 'x');
  });

  it('a malformed pax record is refused (Pax.parse drops it)', () => {
    assert.deepEqual(parsePax(Buffer.from('13 path=abcd\n')), { path: 'abcd' });
    assert.throws(() => parsePax(Buffer.from('14 path=abcd\n')), TarFormatError);
    assert.throws(() => parsePax(Buffer.from('x3 path=abcd\n')), TarFormatError);
    assert.throws(() => parsePax(Buffer.from('9 pathab\n')), TarFormatError);
  });

  it("the tar package's dialect adds a pax header when Header needs one", () => {
    const short = encodePackageHeader({
      path: 'c/Chart.yaml',
      type: 'File',
      size: 3,
      mode: 0o644,
      mtime: new Date(0),
    });
    assert.equal(short.length, 512);
    const long = encodePackageHeader({
      path: `c/${'t'.repeat(200)}`,
      type: 'File',
      size: 3,
      mode: 0o644,
      mtime: new Date(0),
    });
    assert.equal(long.length, 3 * 512);
    assert.equal(decodeHeader(long, 0, 'x').typeflag, 'x');
    assert.equal(parsePax(long.subarray(512, 1024)).path, `c/${'t'.repeat(200)}`);
  });
});
