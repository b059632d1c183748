import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import type { BundleSource } from '../src/bundle/source.ts';
import { checkGraph } from '../src/bundle/verify/checks-graph.ts';
import type { MemberInfo } from '../src/bundle/verify/checks-members.ts';
import { checkMembers } from '../src/bundle/verify/checks-members.ts';
import { checkPartsList } from '../src/bundle/verify/checks-parts.ts';
import { verifyFailureCause, verifyFailureHeadline } from '../src/bundle/verify/errors.ts';
import { MAX_UNLISTED, SignatureGate } from '../src/bundle/verify/gate.ts';
import type { Observation } from '../src/bundle/verify/observations.ts';
import { readPartsInput } from '../src/bundle/verify/parts-input.ts';
import { ProblemList } from '../src/bundle/verify/problems.ts';
import { asDigest, type Descriptor, MediaType, type ParsedManifest, parseManifest } from '../src/index.ts';

/** The checks of verify are functions of data: each is tested here without a tar. */

const hex = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

function node(json: object): { desc: Descriptor; bytes: Buffer; parsed: ParsedManifest } {
  const bytes = Buffer.from(JSON.stringify(json));
  const mediaType = (json as { mediaType: string }).mediaType;
  const desc: Descriptor = { mediaType, digest: asDigest(`sha256:${hex(bytes)}`), size: bytes.length };
  return { desc, bytes, parsed: parseManifest(bytes, mediaType, desc.digest) };
}

function info(name: string, bytes: Buffer, position: number): MemberInfo {
  return { name, hex: hex(bytes), size: bytes.length, position };
}

describe('verify checks (pure, no tar)', () => {
  describe('checkGraph', () => {
    it('names the parent a node is first reached from, depth first, and fails the image', async () => {
      const configBytes = Buffer.from('{}');
      const config: Descriptor = {
        mediaType: MediaType.ociConfig,
        digest: asDigest(`sha256:${hex(configBytes)}`),
        size: 2,
      };
      // b is missing; the index lists a (an index that lists b) before b itself.
      const b = node({ schemaVersion: 2, mediaType: MediaType.ociManifest, config, layers: [] });
      const a = node({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [b.desc] });
      const root = node({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [a.desc, b.desc] });
      const rootDesc = { ...root.desc, annotations: { 'org.opencontainers.image.ref.name': 'demo/app:1.0' } };
      const members = new Map<string, MemberInfo>([
        [`blobs/sha256/${hex(root.bytes)}`, info(`blobs/sha256/${hex(root.bytes)}`, root.bytes, 5)],
        [`blobs/sha256/${hex(a.bytes)}`, info(`blobs/sha256/${hex(a.bytes)}`, a.bytes, 6)],
      ]);
      const problems = new ProblemList();
      const g = await checkGraph(
        {
          index: { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [rootDesc] },
          lading: undefined,
          members,
          manifests: new Map([
            [root.desc.digest, root.parsed],
            [a.desc.digest, a.parsed],
          ]),
          badContent: new Set(),
          truncated: new Set(),
          stopped: undefined,
        },
        problems,
      );
      assert.deepEqual(problems.list, [
        {
          member: `blobs/sha256/${hex(b.bytes)}`,
          kind: 'missing',
          message: `${MediaType.ociManifest} referenced by ${a.desc.digest} is not in the bundle`,
        },
      ]);
      assert.equal(g.images.length, 1);
      assert.equal(g.images[0]!.ok, false);
      assert.equal(g.images[0]!.ref, 'demo/app:1.0');
    });

    it('after a stop, checks no graph', async () => {
      const problems = new ProblemList();
      const root = node({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] });
      const g = await checkGraph(
        {
          index: { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [root.desc] },
          lading: undefined,
          members: new Map(),
          manifests: new Map(),
          badContent: new Set(),
          truncated: new Set(),
          stopped: 'the bundle is not signed',
        },
        problems,
      );
      assert.deepEqual([g.images, g.charts, problems.list], [[], [], []]);
    });
  });

  describe('checkPartsList', () => {
    const text = (names: string[]) => Buffer.from(names.map((n) => `${hex(n)}  ${n}\n`).join(''));
    it('a gap in the numbering, an unlisted part and an unsigned parts file are each named', () => {
      const problems = new ProblemList();
      const expected = checkPartsList(
        {
          stem: 'b.tar',
          onDisk: ['b.tar.000', 'b.tar.002', 'b.tar.003'],
          checksumName: 'b.tar.sha256',
          text: text(['b.tar.000', 'b.tar.001', 'b.tar.002', 'loader']),
          signature: 'missing',
        },
        'sha256:k',
        problems,
      );
      assert.deepEqual(
        problems.list.map((p) => [p.member, p.kind]),
        [
          ['b.tar.001', 'missing'],
          ['b.tar.sha256.sig', 'signature'],
          ['b.tar.003', 'extra'],
        ],
      );
      assert.deepEqual([...(expected ?? new Map()).keys()], ['b.tar.000', 'b.tar.001', 'b.tar.002']);
    });

    it('no parts file: only the gaps', () => {
      const problems = new ProblemList();
      const expected = checkPartsList(
        {
          stem: 'b.tar',
          onDisk: ['b.tar.001'],
          checksumName: undefined,
          text: undefined,
          signature: undefined,
        },
        'sha256:k',
        problems,
      );
      assert.equal(expected, undefined);
      assert.deepEqual(
        problems.list.map((p) => [p.member, p.kind]),
        [['b.tar.000', 'missing']],
      );
    });

    it('readPartsInput: the stem of parts numbered with four digits is the bundle name', async () => {
      const part = (name: string) => ({ name, path: `/b/${name}`, size: 1 });
      const source = {
        path: '/b/b.tar.0000',
        parts: [part('b.tar.0000')],
        partsAfterGap: [part('b.tar.0002')],
        partsChecksumPath: undefined,
      } as unknown as BundleSource;
      const input = await readPartsInput(source, generateKeyPairSync('ed25519').publicKey);
      assert.equal(input.stem, 'b.tar');
      assert.deepEqual(input.onDisk, ['b.tar.0000', 'b.tar.0002']);
    });

    it('parts numbered with four digits: the gap is named with four, nothing else is missing', () => {
      const problems = new ProblemList();
      const expected = checkPartsList(
        {
          stem: 'b.tar',
          onDisk: ['b.tar.0000', 'b.tar.0002'],
          checksumName: 'b.tar.sha256',
          text: text(['b.tar.0000', 'b.tar.0001', 'b.tar.0002']),
          signature: 'ok',
        },
        'sha256:k',
        problems,
      );
      assert.deepEqual(
        problems.list.map((p) => [p.member, p.kind]),
        [['b.tar.0001', 'missing']],
      );
      assert.deepEqual([...(expected ?? new Map()).keys()], ['b.tar.0000', 'b.tar.0001', 'b.tar.0002']);
    });
  });

  describe('SignatureGate', () => {
    const sums = Buffer.from(`${hex('x')}  blobs/sha256/${hex('x')}\n`);
    it('stops at the first blob of an unsigned bundle', () => {
      const gate = new SignatureGate(() => true, 'sha256:k');
      gate.addMetadata('SHA256SUMS', sums);
      const a = gate.admit('blobs/sha256/aa');
      assert.equal(a.stop, true);
      assert.match(a.stop ? a.why : '', /not signed/);
    });
    it('stops at the first blob when the signature does not verify', () => {
      const gate = new SignatureGate(() => false, 'sha256:k');
      gate.addMetadata('SHA256SUMS', sums);
      gate.addMetadata('SHA256SUMS.sig', Buffer.from('sig'));
      const a = gate.admit(`blobs/sha256/${hex('x')}`);
      assert.deepEqual(a.stop && [a.kind, a.why.includes('does not verify with key sha256:k')], [
        'signature',
        true,
      ]);
    });
    it('signed: listed members pass; the unlisted ones pass up to the limit, then it stops', () => {
      const gate = new SignatureGate(() => true, 'sha256:k');
      gate.addMetadata('SHA256SUMS', sums);
      gate.addMetadata('SHA256SUMS.sig', Buffer.from('sig'));
      assert.deepEqual(gate.admit(`blobs/sha256/${hex('x')}`), { stop: false, listed: true });
      for (let i = 0; i < MAX_UNLISTED; i++)
        assert.deepEqual(gate.admit(`x${i}`), { stop: false, listed: false });
      const last = gate.admit('one-more');
      assert.deepEqual(last.stop && last.kind, 'extra');
    });
  });

  describe('checkMembers', () => {
    it('records members in order, a blob under another digest, the signature once', () => {
      const problems = new ProblemList();
      const member = (name: string, data: string, extra: Partial<Observation & { type: 'member' }> = {}) =>
        ({
          type: 'member',
          member: {
            name,
            earlier: undefined,
            isMeta: !name.startsWith('blobs/'),
            blobDigest: name.startsWith('blobs/') ? asDigest(`sha256:${name.slice(-64)}`) : undefined,
            size: data.length,
            hex: hex(data),
            data: name.startsWith('blobs/') ? undefined : Buffer.from(data),
          },
          ...extra,
        }) as Observation;
      let verified = 0;
      const parts: string[] = [];
      const table = checkMembers(
        [
          member('SHA256SUMS', 'sums'),
          member('SHA256SUMS.sig', 'sig'),
          member(`blobs/sha256/${hex('good')}`, 'good'),
          member(`blobs/sha256/${hex('other')}`, 'changed'),
          { type: 'problem', member: 'x', kind: 'unsafe', message: 'absolute path' },
          { type: 'part', part: { name: 'b.tar.000', path: '/b.tar.000', hex: 'ab', size: 1 } },
        ],
        () => {
          verified++;
          return false;
        },
        'sha256:k',
        problems,
        (p) => parts.push(p.name),
      );
      assert.equal(verified, 1);
      assert.equal(table.signatureOk, false);
      assert.deepEqual(
        [...table.members.values()].map((m) => m.position),
        [0, 1, 2, 3],
      );
      assert.deepEqual([...table.badContent], [`blobs/sha256/${hex('other')}`]);
      assert.deepEqual(
        problems.list.map((p) => [p.member, p.kind]),
        [
          ['SHA256SUMS.sig', 'signature'],
          [`blobs/sha256/${hex('other')}`, 'digest'],
          ['x', 'unsafe'],
        ],
      );
      assert.deepEqual(parts, ['b.tar.000']);
    });
  });

  describe('verifyFailureCause', () => {
    const part = (name: string, problems: string[]) => ({
      name,
      ok: problems.length === 0,
      sha256: null,
      problems,
    });
    const signature = { ok: true, keyFingerprint: 'sha256:k' };
    it('a missing part is the root cause, counted from 1, and the hint says to copy every part', () => {
      const report = {
        signature,
        parts: [part('b.tar.000', []), part('b.tar.001', ['missing: gone']), part('b.tar.002', [])],
        problems: [
          { member: 'b.tar.001', kind: 'missing' as const, message: 'gone' },
          { member: 'blobs/sha256/aa', kind: 'missing' as const, message: 'listed' },
        ],
      };
      assert.equal(verifyFailureCause(report).cause, 'part 2 of 3 (b.tar.001) is missing');
      assert.match(verifyFailureCause(report).hint, /copy every part/);
      assert.equal(
        verifyFailureHeadline('/x/b.tar.000', report),
        '/x/b.tar.000 failed verification: part 2 of 3 (b.tar.001) is missing (2 problem(s) in 2 member(s) in all)',
      );
    });
    it('several missing parts are named together; without a root cause the headline is the count', () => {
      const parts = [
        part('b.tar.000', []),
        part('b.tar.001', ['missing: x']),
        part('b.tar.002', ['missing: y']),
      ];
      assert.equal(
        verifyFailureCause({ signature, parts, problems: [] }).cause,
        '2 of the 3 parts are missing (b.tar.001, b.tar.002)',
      );
      const changed = {
        signature,
        parts: [],
        problems: [{ member: 'm', kind: 'digest' as const, message: 'x' }],
      };
      assert.equal(verifyFailureCause(changed).cause, undefined);
      assert.equal(
        verifyFailureHeadline('b.tar', changed),
        'b.tar failed verification: 1 problem(s) in 1 member(s)',
      );
    });
  });
});
