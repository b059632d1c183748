import assert from 'node:assert/strict';
import { cpSync, existsSync, rmSync, unlinkSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExitCode } from '@lading/core';
import { buildTestBundle, cli, RUN_JS, type TestBundle } from './verify-fixtures.ts';

/**
 * Issue 13: a split bundle with a middle part removed gave every problem twice (the report on
 * stdout and the error on stderr), a problem per reference to each missing blob, and the root
 * cause buried among them. Now: the error's first line names the missing part, each problem is
 * printed once, and the hint says to copy every part.
 */
describe('verify: a split bundle with a middle part missing', function () {
  this.timeout(120_000);
  let root: string;
  let s: TestBundle;
  let dir: string;
  before(async () => {
    assert.ok(existsSync(RUN_JS), 'build first: pnpm exec turbo run build');
    root = await mkdtemp(join(tmpdir(), 'lading-verify-part-'));
    s = await buildTestBundle(join(root, 'b'), { splitSize: 120 * 1024 });
    assert.ok(s.result.files.length >= 4, `${s.result.files.length} parts`);
    dir = join(root, 'copy');
    cpSync(join(s.dir, 'out'), dir, { recursive: true });
    unlinkSync(join(dir, 'shop-2.4.0.tar.001'));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('the first line names the missing part, each problem is printed once, the hint says copy every part', () => {
    const total = s.result.files.length;
    const r = cli(['verify', join(dir, 'shop-2.4.0.tar.000'), '--key', s.pub]);
    assert.equal(r.status, ExitCode.verification, r.stderr);
    const errorLines = r.stderr.slice(r.stderr.indexOf('Error:')).split('\n');
    assert.match(
      errorLines[0]!,
      new RegExp(
        `^Error: .* failed verification: part 2 of ${total} \\(shop-2\\.4\\.0\\.tar\\.001\\) is missing`,
      ),
      r.stderr,
    );
    const hint = errorLines.find((l) => l.trim().startsWith('hint:')) ?? '';
    assert.match(hint, /copy every part/);
    assert.doesNotMatch(hint, /changed or damaged/);

    // Every problem the report holds, printed exactly once across stdout and stderr.
    const j = cli(['verify', join(dir, 'shop-2.4.0.tar.000'), '--key', s.pub, '--json']);
    assert.equal(j.status, ExitCode.verification, j.stderr);
    const problems = (
      JSON.parse(j.stdout) as { problems: Array<{ member: string; kind: string; message: string }> }
    ).problems;
    assert.equal(problems[0]?.member, 'shop-2.4.0.tar.001', 'the root cause comes first');
    const pairs = problems.map((p) => `${p.member} (${p.kind})`);
    assert.deepEqual(pairs, [...new Set(pairs)], 'one problem per member and kind');
    const out = `${r.stdout}\n${r.stderr}`.split('\n').map((l) => l.trim());
    for (const p of problems) {
      const line = `${p.member} (${p.kind}): ${p.message}`;
      assert.equal(
        out.filter((l) => l === line).length,
        1,
        `printed once: ${line}\n${r.stdout}\n${r.stderr}`,
      );
    }
    const lines = out.filter((l) => l !== '' && !l.startsWith('verifying'));
    assert.deepEqual(
      lines.filter((l, i) => lines.indexOf(l) !== i),
      [],
      'no line appears twice',
    );
  });
});
