import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExitCode } from '@lading/core';
import { buildTestBundle, cli, type TestBundle } from './verify-fixtures.ts';

/**
 * verify on files that are not bundles is bad input (exit 2, the file named, no stack trace), not a
 * failed verification (exit 3) listing every missing member: a valid tar made by GNU tar that holds
 * other files, and an empty file.
 */
describe('lading-load verify on a file that is not a bundle', function () {
  this.timeout(120_000);
  let root: string;
  let t: TestBundle;

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'lading-verify-odd-'));
    t = await buildTestBundle(join(root, 'b'));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  const cases: Array<[string, (dir: string) => string]> = [
    [
      'a valid tar of other files',
      (dir) => {
        writeFileSync(join(dir, 'notes.txt'), 'not a bundle\n');
        const file = join(dir, 'other.tar');
        const tar = spawnSync('tar', ['-cf', file, '-C', dir, 'notes.txt'], { encoding: 'utf8' });
        assert.equal(tar.status, 0, tar.stderr);
        return file;
      },
    ],
    [
      'a YAML file (a spec given by mistake)',
      (dir) => {
        const file = join(dir, 'lading.yaml');
        writeFileSync(file, 'apiVersion: lading/v1\nname: shop\nversion: 1.0.0\n');
        return file;
      },
    ],
    [
      'an empty file',
      (dir) => {
        const file = join(dir, 'empty.tar');
        writeFileSync(file, '');
        return file;
      },
    ],
  ];
  for (const [what, make] of cases) {
    it(`${what}: exit 2 naming the file, no stack trace (also with --json)`, () => {
      const file = make(root);
      const r = cli(['verify', file, '--key', t.pub]);
      assert.equal(r.status, ExitCode.usage, `${r.stdout}\n${r.stderr}`);
      assert.ok(r.stderr.includes(file), r.stderr);
      assert.doesNotMatch(r.stderr, /\n\s+at .*:\d+:\d+\)?\n/, 'no stack trace');
      const j = cli(['verify', file, '--key', t.pub, '--json']);
      assert.equal(j.status, ExitCode.usage, j.stderr);
    });
  }
});
