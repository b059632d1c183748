import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExitCode, MissingPartError, openBundle, publicKeyFingerprint } from '@lading/core';
import { renderMarkdownReport } from '../src/lib/report.ts';
import { formatVerifyText, runVerify } from '../src/lib/verify.ts';
import { buildTestBundle, cli, memberOffset, RUN_JS, type TestBundle } from './verify-fixtures.ts';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function flipByte(file: string, offset: number): void {
  const b = readFileSync(file);
  b[offset] = (b[offset] ?? 0) ^ 0xff;
  writeFileSync(file, b);
}

/** The ```sh block of a report. */
function shellBlock(md: string): string {
  const m = /```sh\n([\s\S]*?)```/.exec(md);
  assert.ok(m, 'the report has a ```sh block');
  return m[1] as string;
}

describe('lading-load verify', function () {
  this.timeout(180_000);
  let root: string;
  let t: TestBundle;
  let n = 0;
  /** A fresh copy of the good bundle. */
  const copy = (): string => {
    const p = join(root, `copy-${n++}.tar`);
    writeFileSync(p, readFileSync(t.bundle));
    return p;
  };
  const blob = (digest: string) => `blobs/sha256/${digest.slice('sha256:'.length)}`;
  const bigLayer = (): string => {
    const big = t.images.find((i) => i.ref === 'demo/big:1.0');
    assert.ok(big);
    // The largest blob of demo/big is its layer.
    let best = '';
    let size = -1;
    const tar = readFileSync(t.bundle);
    for (const b of big.blobs) {
      const m = memberOffset(tar, blob(b));
      if (m.size > size) {
        size = m.size;
        best = blob(b);
      }
    }
    return best;
  };

  before(async () => {
    assert.ok(
      existsSync(join(RUN_JS, '..', '..', 'dist', 'commands', 'verify.js')),
      'build first: pnpm exec turbo run build',
    );
    root = await mkdtemp(join(tmpdir(), 'lading-verify-'));
    t = await buildTestBundle(join(root, 'b'), {});
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('library: a good bundle verifies, with the bundle file sha256 from the same pass', async () => {
    const r = await runVerify({ bundle: t.bundle, keyFile: t.pub, fileDigests: true });
    assert.equal(r.ok, true, JSON.stringify(r.problems));
    assert.equal(r.signature.keyFingerprint, publicKeyFingerprint(readFileSync(t.pub, 'utf8')));
    assert.equal(r.images.length, t.images.length);
    assert.deepEqual(
      r.charts.map((c) => [c.ref, c.digest, c.ok]),
      [[t.chart.ref, t.chart.digest, true]],
    );
    assert.deepEqual(
      r.bundleFiles.map((f) => f.sha256),
      [sha256(readFileSync(t.bundle))],
    );
    assert.equal(r.sumsDigest, t.result.sumsDigest);
    const text = formatVerifyText(r);
    assert.match(text, /Bundle: +shop 2\.4\.0/);
    assert.match(text, /Signature: OK/);
    for (const i of t.images)
      assert.match(text, new RegExp(`OK +${i.ref.replace(/[.]/g, '\\.')} +${i.digest}`));
    assert.match(text, /Verdict: +OK/);
  });

  it('CLI: exit 0, human report on stdout, progress on stderr', () => {
    const r = cli(['verify', t.bundle, '--key', t.pub]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Signature: OK \(key sha256:[0-9a-f]{64}/);
    assert.match(r.stdout, /OK +charts\/web:1\.2\.3 +sha256:/);
    assert.match(r.stdout, /OK +files\/values\/web\.yaml/);
    assert.match(r.stdout, /Checked: +\d+ members/);
    assert.match(r.stderr, /verifying: .*KiB/);
  });

  it('CLI --json: the VerifyReport, nothing else on stdout', () => {
    const r = cli(['verify', t.bundle, '--key', t.pub, '--json']);
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.ok, true);
    assert.equal(j.bundle.name, 'shop');
    assert.equal(j.bundle.kind, 'tar');
    assert.equal(j.signature.ok, true);
    assert.deepEqual(j.problems, []);
    assert.equal(j.images.length, t.images.length);
    assert.deepEqual(j.bundleFiles, [], 'the whole-file hash is only computed for --report');
    assert.equal(r.stderr, '');
  });

  it('--report: a Markdown report whose hand commands pass with tar/openssl/sha256sum', () => {
    const report = join(root, 'reports', 'ok.md');
    mkdirSync(join(root, 'reports'), { recursive: true });
    const r = cli(['verify', t.bundle, '--key', t.pub, '--report', report]);
    assert.equal(r.status, 0, r.stderr);
    const md = readFileSync(report, 'utf8');
    assert.match(md, /^# Bundle verification report: PASSED/);
    assert.match(md, /\| Tool \| `lading-load 0\.1\.0` \|/);
    assert.match(md, /\| Date \| `\d{4}-\d\d-\d\dT/);
    assert.ok(md.includes(sha256(readFileSync(t.bundle))), 'the bundle sha256');
    assert.ok(md.includes(t.result.sumsDigest.slice(7)), 'the SHA256SUMS sha256');
    assert.ok(md.includes(publicKeyFingerprint(readFileSync(t.pub, 'utf8'))), 'the key fingerprint');
    for (const i of t.images) assert.ok(md.includes(`| OK | \`${i.ref}\` | \`${i.digest}\``), i.ref);
    assert.ok(md.includes(`| OK | \`${t.chart.ref}\``));
    assert.match(md, /## Problems \(0\)\n\nNone\./);
    // Only the report in its folder: the temporary file was renamed.
    assert.deepEqual(readdirSync(join(root, 'reports')), ['ok.md']);
    // The hand commands work, and print what the report says.
    const work = join(root, 'hand');
    rmSync(work, { recursive: true, force: true });
    spawnSync('mkdir', ['-p', work]);
    const sh = spawnSync('sh', ['-e', '-c', shellBlock(md)], { cwd: work, encoding: 'utf8' });
    assert.equal(sh.status, 0, sh.stderr + sh.stdout);
    assert.match(sh.stdout, /Verified OK/);
    assert.ok(sh.stdout.includes(sha256(readFileSync(t.bundle))));
    assert.ok(sh.stdout.includes(publicKeyFingerprint(readFileSync(t.pub, 'utf8')).slice(7)));
    assert.doesNotMatch(sh.stdout, /FAILED/);
  });

  it('renderMarkdownReport escapes table cells', async () => {
    const r = await runVerify({ bundle: t.bundle, keyFile: t.pub, fileDigests: true });
    r.problems.push({ member: 'a|b`c', kind: 'extra', message: 'x | y\nz' });
    const md = renderMarkdownReport(r, { tool: { name: 'lading-load', version: '9' } });
    assert.ok(md.includes('| a\\|b\\`c | extra | x \\| y z |'), md.split('## Problems')[1]);
  });

  describe('tamper matrix (real CLI): exit 3, the member named on stderr and in --json', () => {
    const cases: Array<{
      name: string;
      make: () => { bundle: string; key?: string };
      member: () => string;
      kind: string;
    }> = [
      {
        name: 'a byte flipped in a layer blob',
        make: () => {
          const p = copy();
          const m = memberOffset(readFileSync(p), bigLayer());
          flipByte(p, m.offset + Math.floor(m.size / 2));
          return { bundle: p };
        },
        member: () => bigLayer(),
        kind: 'digest',
      },
      {
        name: 'a byte flipped in lading.json',
        make: () => {
          const p = copy();
          const m = memberOffset(readFileSync(p), 'lading.json');
          // Inside the bundle name: still JSON, another value.
          const text = readFileSync(p)
            .subarray(m.offset, m.offset + m.size)
            .toString();
          const at = text.indexOf('"shop"') + 1;
          const b = readFileSync(p);
          b[m.offset + at] = 'S'.charCodeAt(0);
          writeFileSync(p, b);
          return { bundle: p };
        },
        member: () => 'lading.json',
        kind: 'digest',
      },
      {
        name: 'a member dropped',
        make: () => {
          const p = copy();
          const r = spawnSync('tar', ['--delete', '-f', p, bigLayer()], { encoding: 'utf8' });
          assert.equal(r.status, 0, r.stderr);
          return { bundle: p };
        },
        member: () => bigLayer(),
        kind: 'missing',
      },
      {
        name: 'the wrong public key',
        make: () => ({ bundle: t.bundle, key: t.otherPub }),
        member: () => 'SHA256SUMS.sig',
        kind: 'signature',
      },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const { bundle, key } = c.make();
        const member = c.member();
        const h = cli(['verify', bundle, '--key', key ?? t.pub]);
        assert.equal(h.status, ExitCode.verification, h.stderr);
        assert.ok(h.stderr.includes(member), `stderr names ${member}: ${h.stderr}`);
        assert.match(h.stdout, /Verdict: +FAILED/);
        const j = cli(['verify', bundle, '--key', key ?? t.pub, '--json']);
        assert.equal(j.status, ExitCode.verification, j.stderr);
        const doc = JSON.parse(j.stdout);
        assert.equal(doc.ok, false);
        assert.equal(doc.error.code, 'BUNDLE_VERIFICATION_FAILED');
        assert.ok(
          doc.problems.some(
            (p: { member: string; kind: string }) => p.member === member && p.kind === c.kind,
          ),
          JSON.stringify(doc.problems),
        );
      });
    }

    it('a failed verification still writes the report, marked FAILED, naming the member', () => {
      const p = copy();
      const m = memberOffset(readFileSync(p), bigLayer());
      flipByte(p, m.offset + 10);
      const report = join(root, 'failed.md');
      const r = cli(['verify', p, '--key', t.pub, '--report', report]);
      assert.equal(r.status, 3, r.stderr);
      const md = readFileSync(report, 'utf8');
      assert.match(md, /^# Bundle verification report: FAILED/);
      assert.ok(md.includes(`| \`${bigLayer()}\` | digest |`), md);
      assert.match(md, /\| \*\*FAILED\*\* \| `demo\/big:1\.0`/);
    });
  });

  it('malformed input is exit 2: not a tar, a missing bundle, a missing key', () => {
    const junk = join(root, 'junk.tar');
    writeFileSync(junk, Buffer.alloc(4096, 0x41));
    const a = cli(['verify', junk, '--key', t.pub]);
    assert.equal(a.status, ExitCode.usage, a.stderr);
    assert.ok(a.stderr.includes(junk));
    const b = cli(['verify', join(root, 'nope.tar'), '--key', t.pub]);
    assert.equal(b.status, ExitCode.usage, b.stderr);
    assert.match(b.stderr, /nope\.tar/);
    const c = cli(['verify', t.bundle, '--key', join(root, 'nope.pub')]);
    assert.equal(c.status, ExitCode.usage, c.stderr);
    const d = cli(['verify', t.bundle, '--key', t.pub, '--endpoint', 'http://127.0.0.1:1']);
    assert.equal(d.status, ExitCode.usage, d.stderr);
    assert.match(d.stderr, /only to an s3:\/\/ bundle/);
  });

  it('an extracted directory verifies; a changed file in it fails naming the file', async () => {
    const dir = join(root, 'extracted');
    await mkdir(dir, { recursive: true });
    const x = spawnSync('tar', ['-xf', t.bundle, '-C', dir]);
    assert.equal(x.status, 0);
    const ok = cli(['verify', dir, '--key', t.pub, '--json']);
    assert.equal(ok.status, 0, ok.stderr);
    const j = JSON.parse(ok.stdout);
    assert.equal(j.bundle.kind, 'directory');
    assert.deepEqual(j.bundleFiles, []);
    writeFileSync(join(dir, 'files', 'values', 'web.yaml'), 'replicaCount: 200\n');
    const bad = cli(['verify', dir, '--key', t.pub]);
    assert.equal(bad.status, 3, bad.stderr);
    assert.ok(bad.stderr.includes('files/values/web.yaml'));
  });

  it('the README section "Verifying a bundle without Lading" works as written', () => {
    const readme = readFileSync(join(RUN_JS, '..', '..', '..', '..', 'README.md'), 'utf8');
    const section = readme.split('## Verifying a bundle without Lading')[1];
    assert.ok(section, 'the README has the section');
    const blocks = [...section.split(/\n## /)[0]!.matchAll(/```sh\n([\s\S]*?)```/g)].map(
      (m) => m[1] as string,
    );
    assert.equal(blocks.length, 3);
    const work = join(root, 'readme');
    rmSync(work, { recursive: true, force: true });
    spawnSync('mkdir', ['-p', work]);
    writeFileSync(join(work, 'shop-2.4.0.tar'), readFileSync(t.bundle));
    writeFileSync(join(work, 'release.pub'), readFileSync(t.pub));
    const sh = spawnSync('sh', ['-e', '-c', `${blocks[0]}\n${blocks[1]}`], { cwd: work, encoding: 'utf8' });
    assert.equal(sh.status, 0, sh.stderr + sh.stdout);
    assert.match(sh.stdout, /Verified OK/);
    assert.ok(sh.stdout.includes(publicKeyFingerprint(readFileSync(t.pub, 'utf8')).slice(7)));
    assert.ok(sh.stdout.includes(t.result.sumsDigest.slice(7)));
    // The extra-member check prints what is not listed.
    writeFileSync(join(work, 'check', 'blobs', 'sha256', 'intruder'), 'x');
    const extra = spawnSync('sh', ['-e', '-c', blocks[1] as string], {
      cwd: join(work, 'check'),
      encoding: 'utf8',
    });
    assert.match(extra.stdout, /blobs\/sha256\/intruder/);
    // A tampered member fails sha256sum -c.
    writeFileSync(join(work, 'check', 'files', 'values', 'web.yaml'), 'changed\n');
    const bad = spawnSync('sha256sum', ['-c', '--strict', 'SHA256SUMS'], {
      cwd: join(work, 'check'),
      encoding: 'utf8',
    });
    assert.notEqual(bad.status, 0);
  });

  describe('split bundle', () => {
    let s: TestBundle;
    let parts: string[];
    before(async () => {
      s = await buildTestBundle(join(root, 'split'), { splitSize: 200 * 1024 });
      parts = s.result.files;
      assert.ok(parts.length >= 3, `${parts.length} parts`);
    });

    it('verifies from the first part, with every part hashed against NAME.tar.sha256', () => {
      const r = cli(['verify', parts[0] as string, '--key', s.pub, '--json']);
      assert.equal(r.status, 0, r.stderr);
      const j = JSON.parse(r.stdout);
      assert.equal(j.bundle.kind, 'parts');
      assert.deepEqual(
        j.parts.map((p: { name: string; sha256: string; ok: boolean }) => [p.name, p.sha256, p.ok]),
        parts.map((p) => [p.split('/').pop(), sha256(readFileSync(p)), true]),
      );
      const report = join(root, 'split.md');
      const h = cli(['verify', parts[0] as string, '--key', s.pub, '--report', report]);
      assert.equal(h.status, 0, h.stderr);
      assert.match(h.stdout, /Parts \(\d+\):/);
      const md = readFileSync(report, 'utf8');
      assert.match(md, /sha256sum -c shop-2\.4\.0\.tar\.sha256/);
      const work = join(root, 'hand-split');
      spawnSync('mkdir', ['-p', work]);
      const sh = spawnSync('sh', ['-e', '-c', shellBlock(md)], { cwd: work, encoding: 'utf8' });
      assert.equal(sh.status, 0, sh.stderr + sh.stdout);
      assert.match(sh.stdout, /Verified OK[\s\S]*Verified OK/, 'NAME.tar.sha256.sig and SHA256SUMS.sig');
    });

    it('a changed part fails naming the part', () => {
      const copyDir = join(root, 'split-bad');
      spawnSync('cp', ['-r', join(s.dir, 'out'), copyDir]);
      const p1 = join(copyDir, 'shop-2.4.0.tar.001');
      flipByte(p1, 100_000);
      const r = cli(['verify', join(copyDir, 'shop-2.4.0.tar.000'), '--key', s.pub]);
      assert.equal(r.status, 3, r.stderr);
      assert.ok(r.stderr.includes('shop-2.4.0.tar.001'), r.stderr);
    });

    it('a missing part is exit 3 naming it; openBundle names it too', async () => {
      const copyDir = join(root, 'split-missing');
      spawnSync('cp', ['-r', join(s.dir, 'out'), copyDir]);
      unlinkSync(join(copyDir, 'shop-2.4.0.tar.001'));
      const first = join(copyDir, 'shop-2.4.0.tar.000');
      const r = cli(['verify', first, '--key', s.pub, '--json']);
      assert.equal(r.status, 3, r.stderr);
      const j = JSON.parse(r.stdout);
      assert.ok(
        j.problems.some(
          (p: { member: string; kind: string }) => p.member === 'shop-2.4.0.tar.001' && p.kind === 'missing',
        ),
        JSON.stringify(j.problems),
      );
      const h = cli(['verify', first, '--key', s.pub]);
      assert.equal(h.status, 3);
      assert.match(h.stderr, /shop-2\.4\.0\.tar\.001 \(missing\)/);
      // verify and everything that opens the bundle (inspect, push, serve…) say it the same way
      const said = /part 2 of \d+ \(shop-2\.4\.0\.tar\.001\) is missing/.exec(h.stderr)?.[0];
      assert.ok(said, h.stderr);
      await assert.rejects(openBundle(first), (err: unknown) => {
        assert.ok(err instanceof MissingPartError, String(err));
        assert.equal(err.message, `${first}: ${said}`);
        assert.equal(err.part, join(copyDir, 'shop-2.4.0.tar.001'));
        assert.ok(err.hint?.includes('copy every part'));
        return true;
      });
      // The last part missing (no gap in the numbering): the parts file names it.
      const lastDir = join(root, 'split-missing-last');
      spawnSync('cp', ['-r', join(s.dir, 'out'), lastDir]);
      const last = parts[parts.length - 1]!.split('/').pop() as string;
      unlinkSync(join(lastDir, last));
      // The README's split-bundle commands, on the good parts.
      const readme = readFileSync(join(RUN_JS, '..', '..', '..', '..', 'README.md'), 'utf8');
      const block = [
        ...readme.split('## Verifying a bundle without Lading')[1]!.matchAll(/```sh\n([\s\S]*?)```/g),
      ][2]![1]!;
      const work = join(root, 'readme-split');
      spawnSync('cp', ['-r', join(s.dir, 'out'), work]);
      writeFileSync(join(root, 'release.pub'), readFileSync(s.pub));
      const sh = spawnSync(
        'sh',
        [
          '-e',
          '-c',
          block
            .replaceAll('NAME.tar', 'shop-2.4.0.tar')
            .replaceAll('../release.pub', join(root, 'release.pub'))
            .replaceAll('-verify release.pub', `-verify ${join(root, 'release.pub')}`),
        ],
        {
          cwd: work,
          encoding: 'utf8',
        },
      );
      assert.equal(sh.status, 0, sh.stderr + sh.stdout);
      assert.match(sh.stdout, /Verified OK[\s\S]*Verified OK/, 'NAME.tar.sha256.sig and SHA256SUMS.sig');
      const l = cli(['verify', join(lastDir, 'shop-2.4.0.tar.000'), '--key', s.pub]);
      assert.equal(l.status, 3, l.stderr);
      assert.ok(l.stderr.includes(`${last} (missing)`), l.stderr);
      const lastSaid = new RegExp(
        `part ${parts.length} of ${parts.length} \\(${last.replaceAll('.', '\\.')}\\) is missing`,
      );
      assert.match(l.stderr, lastSaid);
      await assert.rejects(openBundle(join(lastDir, 'shop-2.4.0.tar.000')), (err: unknown) => {
        assert.ok(err instanceof MissingPartError, String(err));
        assert.match(err.message, lastSaid);
        return true;
      });
    });
  });
});
