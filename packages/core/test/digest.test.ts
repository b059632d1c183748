import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  DigestMismatchError,
  digestOf,
  InvalidDigestError,
  parseDigest,
  SizeMismatchError,
  VerifyingStream,
} from '../src/digest/index.ts';

function sink(): Writable & { bytes: number } {
  const w = new Writable({
    write(chunk: Buffer, _e, cb) {
      (w as Writable & { bytes: number }).bytes += chunk.length;
      cb();
    },
  }) as Writable & { bytes: number };
  w.bytes = 0;
  return w;
}

describe('digest', () => {
  it('parses sha256 and sha512 and rejects the rest with a typed error', () => {
    const d = digestOf('hello');
    assert.equal(d, 'sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824');
    assert.equal(parseDigest(d).algorithm, 'sha256');
    assert.equal(parseDigest(digestOf('x', 'sha512')).algorithm, 'sha512');
    for (const bad of [
      'sha256:ABC',
      'md5:0123',
      'nocolon',
      'sha256:' + 'a'.repeat(63),
      ':' + 'a'.repeat(64),
    ]) {
      assert.throws(() => parseDigest(bad), InvalidDigestError, bad);
    }
  });

  it('VerifyingStream passes matching content through', async () => {
    const data = Buffer.alloc(100_000, 7);
    const out = sink();
    await pipeline(
      Readable.from([data.subarray(0, 50_000), data.subarray(50_000)]),
      new VerifyingStream({ digest: digestOf(data), size: data.length }),
      out,
    );
    assert.equal(out.bytes, data.length);
  });

  it('fails as soon as more bytes than declared arrive', async () => {
    const data = Buffer.alloc(1000, 1);
    const out = sink();
    const chunks = [data, data, data];
    let pulled = 0;
    const src = Readable.from(
      (function* () {
        for (const c of chunks) {
          pulled++;
          yield c;
        }
      })(),
    );
    await assert.rejects(
      pipeline(src, new VerifyingStream({ digest: digestOf(data), size: 1000 }), out),
      (e: unknown) => e instanceof SizeMismatchError && e.early,
    );
    assert.ok(out.bytes <= 1000, 'no byte beyond the declared size is passed on');
    assert.ok(pulled < 3 || out.bytes === 1000);
  });

  it('fails at the end on a short stream or a digest mismatch', async () => {
    const data = Buffer.from('abc');
    await assert.rejects(
      pipeline(Readable.from([data]), new VerifyingStream({ digest: digestOf(data), size: 4 }), sink()),
      (e: unknown) => e instanceof SizeMismatchError && !e.early,
    );
    await assert.rejects(
      pipeline(Readable.from([data]), new VerifyingStream({ digest: digestOf('abd'), size: 3 }), sink()),
      (e: unknown) => e instanceof DigestMismatchError && e.actual === digestOf(data) && e.exitCode === 3,
    );
  });
});
