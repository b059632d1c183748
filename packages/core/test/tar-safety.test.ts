import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  entryProblem,
  memberNameProblem,
  normalizeMemberName,
  openBundle,
  TarTruncatedError,
  UnsafeTarEntryError,
  type VerifyReport,
  verifyBundle,
} from '../src/bundle/index.ts';
import { ExitCode } from '../src/errors/index.ts';
import {
  type Keys,
  makeKeys,
  makeStaging,
  pythonTar,
  run,
  type Staging,
  tarUp,
  tmp,
} from './bundle-read-fixture.ts';

describe('tar safety', () => {
  describe('member names', () => {
    it('accepts plain relative names (and a leading ./)', () => {
      for (const ok of [
        'oci-layout',
        'blobs/sha256/abc',
        'files/values/web.yaml',
        './lading.json',
        'files/a..b',
      ]) {
        assert.equal(memberNameProblem(ok), undefined, ok);
      }
      assert.equal(normalizeMemberName('./lading.json'), 'lading.json');
      assert.equal(normalizeMemberName('blobs/sha256/'), 'blobs/sha256');
    });
    it('refuses traversal, absolute paths, NUL, backslashes, control characters, empty components', () => {
      const bad: Array<[string, RegExp]> = [
        ['../x', /traversal/],
        ['files/../../x', /traversal/],
        ['files/..', /traversal/],
        ['/etc/x', /absolute/],
        ['C:/x', /drive/],
        ['files/a\0b', /NUL/],
        ['..\\..\\x', /backslash/],
        ['files\\x', /backslash/],
        ['files/a\nb', /control/],
        ['files//x', /empty path component/],
        ['files/./x', /"\." component/],
        ['', /empty/],
        ['.', /root/],
        ['files/\uFFFD', /UTF-8/],
      ];
      for (const [name, re] of bad)
        assert.match(memberNameProblem(name) ?? 'accepted', re, JSON.stringify(name));
    });
    it('refuses links, devices, FIFOs and unknown types whatever the name', () => {
      const e = { name: 'files/x', typeflag: '0', linkname: '' };
      assert.equal(entryProblem({ ...e, type: 'file' }), undefined);
      assert.equal(entryProblem({ ...e, type: 'directory' }), undefined);
      assert.match(
        entryProblem({ ...e, type: 'symlink', linkname: '/etc/passwd' })!,
        /symbolic link to "\/etc\/passwd"/,
      );
      assert.match(entryProblem({ ...e, type: 'hardlink', linkname: 'x' })!, /hard link/);
      assert.match(entryProblem({ ...e, type: 'char-device' })!, /character device/);
      assert.match(entryProblem({ ...e, type: 'block-device' })!, /block device/);
      assert.match(entryProblem({ ...e, type: 'fifo' })!, /FIFO/);
      assert.match(entryProblem({ ...e, type: 'other', typeflag: 'S' })!, /unsupported/);
    });
  });

  describe('archive attack corpus', () => {
    let root: string;
    let keys: Keys;
    let st: Staging;
    let good: string;

    before(() => {
      root = tmp();
      keys = makeKeys(root);
      st = makeStaging(join(root, 'staging'), keys);
      good = tarUp(st.dir, st.members, join(root, 'good.tar'));
    });
    after(() => rmSync(root, { recursive: true, force: true }));

    // Each attack is appended to a good bundle by python's tarfile (an independent writer).
    const attacks: Array<{ name: string; member: string; kind: string; py: string }> = [
      {
        name: 'path traversal ../x',
        member: '../x',
        kind: 'unsafe',
        py: `ti = tarfile.TarInfo('../x'); d = b'pwned'; ti.size = len(d); t.addfile(ti, io.BytesIO(d))`,
      },
      {
        name: 'deep traversal under files/',
        member: 'files/../../escape',
        kind: 'unsafe',
        py: `ti = tarfile.TarInfo('files/../../escape'); d = b'pwned'; ti.size = len(d); t.addfile(ti, io.BytesIO(d))`,
      },
      {
        name: 'absolute path /etc/x',
        member: '/etc/x',
        kind: 'unsafe',
        py: `ti = tarfile.TarInfo('/etc/x'); d = b'pwned'; ti.size = len(d); t.addfile(ti, io.BytesIO(d))`,
      },
      {
        name: 'symlink',
        member: 'files/link',
        kind: 'unsafe',
        py: `ti = tarfile.TarInfo('files/link'); ti.type = tarfile.SYMTYPE; ti.linkname = '/etc/passwd'; t.addfile(ti)`,
      },
      {
        name: 'hardlink',
        member: 'files/hard',
        kind: 'unsafe',
        py: `ti = tarfile.TarInfo('files/hard'); ti.type = tarfile.LNKTYPE; ti.linkname = 'oci-layout'; t.addfile(ti)`,
      },
      {
        name: 'character device',
        member: 'files/null',
        kind: 'unsafe',
        py: `ti = tarfile.TarInfo('files/null'); ti.type = tarfile.CHRTYPE; ti.devmajor = 1; ti.devminor = 3; t.addfile(ti)`,
      },
      {
        name: 'block device',
        member: 'files/sda',
        kind: 'unsafe',
        py: `ti = tarfile.TarInfo('files/sda'); ti.type = tarfile.BLKTYPE; ti.devmajor = 8; t.addfile(ti)`,
      },
      {
        name: 'FIFO',
        member: 'files/fifo',
        kind: 'unsafe',
        py: `ti = tarfile.TarInfo('files/fifo'); ti.type = tarfile.FIFOTYPE; t.addfile(ti)`,
      },
      {
        name: 'backslash traversal',
        member: '..\\..\\x',
        kind: 'unsafe',
        py: `ti = tarfile.TarInfo('..\\\\..\\\\x'); d = b'pwned'; ti.size = len(d); t.addfile(ti, io.BytesIO(d))`,
      },
      {
        name: 'a long pax path with traversal',
        member: `files/${'a'.repeat(150)}/../../../x`,
        kind: 'unsafe',
        py: `ti = tarfile.TarInfo('files/' + 'a'*150 + '/../../../x'); d = b'pwned'; ti.size = len(d); t.addfile(ti, io.BytesIO(d))`,
      },
      {
        name: 'a type-0 member whose name ends in / with data (GNU tar reads a file)',
        member: 'files/evil/',
        kind: 'unsafe',
        py: `ti = tarfile.TarInfo('files/evil/'); ti.type = tarfile.REGTYPE; d = b'pwned'; ti.size = len(d); t.addfile(ti, io.BytesIO(d))`,
      },
      {
        name: 'duplicate name',
        member: 'lading.json',
        kind: 'duplicate',
        py: `ti = tarfile.TarInfo('lading.json'); d = b'{}'; ti.size = len(d); t.addfile(ti, io.BytesIO(d))`,
      },
      {
        name: 'names differing only in case',
        member: 'FILES/values/web.yaml',
        kind: 'duplicate',
        py: `ti = tarfile.TarInfo('FILES/values/web.yaml'); d = b'x: 1'; ti.size = len(d); t.addfile(ti, io.BytesIO(d))`,
      },
    ];

    const snapshot = () => readdirSync(root).sort().join('\n');

    for (const a of attacks) {
      it(`${a.name} → refused, member named, nothing written`, async () => {
        const p = join(root, `attack-${attacks.indexOf(a)}.tar`);
        copyFileSync(good, p);
        pythonTar(p, `t = tarfile.open(out, 'a', format=tarfile.PAX_FORMAT)\n${a.py}\nt.close()`);
        const before = snapshot();
        const report: VerifyReport = await verifyBundle(p, { publicKey: keys.pub });
        assert.equal(report.ok, false);
        assert.ok(
          report.problems.some((x) => x.member === a.member && x.kind === a.kind),
          JSON.stringify(report.problems),
        );
        // openBundle (push, serve) refuses the archive outright.
        await assert.rejects(openBundle(p), (err: unknown) => {
          return (
            err instanceof UnsafeTarEntryError &&
            err.member === a.member &&
            err.exitCode === ExitCode.verification
          );
        });
        assert.equal(snapshot(), before, 'nothing new in the working folder');
        assert.equal(existsSync(join(root, '..', 'x')), false);
        assert.equal(existsSync(join(root, '..', 'escape')), false);
      });
    }

    it('a huge declared size (beyond the file end) → truncated, member named', async () => {
      const p = join(root, 'huge.tar');
      // A header that says 1 TiB of data follows, then the archive just ends.
      pythonTar(
        p,
        [
          `t = tarfile.open(out, 'w', format=tarfile.GNU_FORMAT)`,
          `ti = tarfile.TarInfo('oci-layout'); ti.size = 1 << 40`,
          `buf = ti.tobuf(tarfile.GNU_FORMAT)`,
          `t.close()`,
          `open(out, 'wb').write(buf + b'{"imageLayoutVersion":"1.0.0"}' + b'\\0' * 2000)`,
        ].join('\n'),
      );
      const report = await verifyBundle(p, { publicKey: keys.pub });
      assert.equal(report.ok, false);
      assert.ok(
        report.problems.some((x) => x.member === 'oci-layout' && x.kind === 'truncated'),
        JSON.stringify(report.problems),
      );
      await assert.rejects(
        openBundle(p),
        (err: unknown) => err instanceof TarTruncatedError && err.member === 'oci-layout',
      );
    });

    it('a symlink inside an extracted bundle directory → unsafe', async () => {
      const x = join(root, 'extracted');
      run('mkdir', ['-p', x]);
      run('tar', ['-xf', good, '-C', x]);
      run('ln', ['-s', '/etc/passwd', join(x, 'files', 'passwd')]);
      const report = await verifyBundle(x, { publicKey: keys.pub });
      assert.ok(
        report.problems.some((p) => p.member === 'files/passwd' && p.kind === 'unsafe'),
        JSON.stringify(report.problems),
      );
      await assert.rejects(openBundle(x), UnsafeTarEntryError);
    });
  });
});
