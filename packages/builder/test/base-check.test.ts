/**
 * What `create --since OLD` says is wrong with a base (base-check.ts), case by case: the bundle-level
 * tests (create-errors.test.ts) build a damaged, an unsigned and a same-version base; these cover the
 * other problems without building one — members missing, blobs not listed, another key, and the
 * lading.json-alone base that has no members and may have no signature.
 */
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { Member, sign } from '@lading/core';
import { type BaseContents, baseProblems } from '../src/lib/base-check.ts';

const hex = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

describe('create --since: what does not check out in a base (baseProblems)', () => {
  const key = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
  const other = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
  const lading = Buffer.from('{"name":"t","version":"1"}');
  const index = Buffer.from('{"manifests":[]}');
  const blob = `blobs/sha256/${hex('layer')}`;

  /** A base that checks out: every metadata member and the blob listed, all present, signed by `key`. */
  const good = (): BaseContents => {
    const sums = new Map([
      [Member.manifest, hex(lading)],
      [Member.index, hex(index)],
      [blob, hex('layer')],
    ]);
    const sumsBytes = Buffer.from([...sums].map(([n, h]) => `${h}  ${n}\n`).join(''));
    return {
      sums,
      sumsBytes,
      signature: sign(sumsBytes, key),
      metadata: [
        [Member.manifest, lading],
        [Member.index, index],
      ],
      members: [Member.sums, Member.signature, ...sums.keys()],
    };
  };

  it('a base that checks out: no problems, with the key or without', () => {
    assert.deepEqual(baseProblems(good(), key), []);
    assert.deepEqual(baseProblems(good()), []);
  });

  it('metadata not listed, or not matching its line', () => {
    const base = good();
    const sums = new Map(base.sums);
    sums.delete(Member.index);
    sums.set(Member.manifest, hex('something else'));
    assert.deepEqual(baseProblems({ ...base, sums }), [
      'lading.json does not match its SHA256SUMS line',
      'SHA256SUMS does not list index.json',
    ]);
  });

  it('members SHA256SUMS lists are missing, and blobs it does not list', () => {
    const base = good();
    const stray = `blobs/sha256/${hex('stray')}`;
    const problems = baseProblems({
      ...base,
      members: [...(base.members as string[]).filter((n) => n !== blob), stray, 'notes.txt'],
    });
    assert.deepEqual(problems, [
      `members SHA256SUMS lists are missing: ${blob}`,
      `blobs SHA256SUMS does not list: ${stray}`,
    ]);
    // long lists name the first three and the count
    const many = Array.from({ length: 5 }, (_, i) => `blobs/sha256/${hex(`x${i}`)}`);
    const [long] = baseProblems({ ...base, members: [...(base.members as string[]), ...many] });
    assert.equal(long, `blobs SHA256SUMS does not list: ${many.slice(0, 3).join(', ')}, … (5)`);
  });

  it('signed with another key, or changed after signing: the signature does not verify', () => {
    const base = good();
    const want = [
      'its signature does not verify with the public half of --key (signed with another key, or changed after signing)',
    ];
    assert.deepEqual(baseProblems({ ...base, signature: sign(base.sumsBytes, other) }, key), want);
    assert.deepEqual(baseProblems({ ...base, signature: Buffer.from('not a signature') }, key), want);
    assert.deepEqual(
      baseProblems({ ...base, sumsBytes: Buffer.concat([base.sumsBytes, Buffer.from('\n')]) }, key),
      want,
    );
    // an unsigned build does not check signatures
    assert.deepEqual(baseProblems({ ...base, signature: sign(base.sumsBytes, other) }), []);
  });

  it('unsigned: a problem for a bundle, not for a lading.json given alone (its signature may not be beside it)', () => {
    const base = good();
    assert.deepEqual(baseProblems({ ...base, signature: undefined }, key), ['it is unsigned']);
    assert.deepEqual(baseProblems({ ...base, signature: Buffer.alloc(0) }, key), ['it is unsigned']);
    const { members: _members, ...alone } = base;
    assert.deepEqual(baseProblems({ ...alone, signature: undefined }, key), []);
    // but a signature beside it is still checked
    assert.equal(baseProblems({ ...alone, signature: sign(base.sumsBytes, other) }, key).length, 1);
  });
});
