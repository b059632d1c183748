/**
 * What `push` and `verify` show on a terminal (issue 13, "Progress"): every bar is left standing at
 * its total (push at 2/2 once both items are done, verify at the bundle's size) and says what it
 * counts; off a terminal the last line of each phase is at its total.
 */
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { type RegistryServer, runOnTty, startRegistry } from '@lading/testkit';
import {
  type BundleEntry,
  CLI,
  type Fixture,
  makeFixture,
  REPO_ROOT,
  runCli,
  STATE_DIR,
} from './push-helpers.ts';
import { type S3Fixture, startS3Fixture } from './verify-fixtures.ts';

describe('lading-load progress output (built binary)', function () {
  this.timeout(180_000);
  let f: Fixture;
  let reg: RegistryServer;
  let bundle: string;

  before(async () => {
    f = await makeFixture(2 * 1024 * 1024);
    const two = f.entries.filter((e) => e.kind === 'image').slice(0, 2) as BundleEntry[];
    bundle = await f.bundle('two.tar', { entries: two });
    reg = await startRegistry({ mode: 'http' });
  });
  after(async () => {
    await reg?.stop();
    await f?.cleanup();
  });

  const tty = (args: string[]) =>
    runOnTty([process.execPath, CLI, ...args], {
      cwd: REPO_ROOT,
      env: { NODE_OPTIONS: '', LADING_STATE_DIR: STATE_DIR },
    });

  it('push on a terminal: the verify bar and the push bar end at their totals, 2/2', async () => {
    const r = await tty(['push', bundle, '--key', f.pub, '--registry', `${reg.host}/tty`, '--plain-http']);
    assert.equal(r.code, 0, r.raw);
    const screen = r.screen.join('\n');
    const verify = r.screen.filter((l) => l.startsWith('verifying ['));
    assert.equal(verify.length, 1, screen);
    assert.match(verify[0] ?? '', /^verifying \[#{24}\] (\S+ \S+) \/ \1, \d+ members/);
    const push = r.screen.filter((l) => l.startsWith('pushing ['));
    assert.equal(push.length, 1, screen);
    assert.match(push[0] ?? '', /^pushing \[#{24}\] (\S+ \S+) \/ \1, 2\/2 images and charts/);
  });

  it('push off a terminal: the last push line is at 2/2, no line before anything moved', async () => {
    const r = await runCli([
      'push',
      bundle,
      '--key',
      f.pub,
      '--registry',
      `${reg.host}/plain`,
      '--plain-http',
      '--reverify',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stderr.split('\n').filter((l) => /^(pushing|verifying): /.test(l));
    for (const l of lines) {
      assert.doesNotMatch(l, /: 0 B \/ [^,]+, 0[/ ]/, `nothing moved yet: no line (${l})`);
      assert.doesNotMatch(l, /, $/, 'no dangling comma');
    }
    assert.match(lines.filter((l) => l.startsWith('pushing')).at(-1) ?? '', /: (\S+ \S+) \/ \1, 2\/2 images/);
    assert.match(
      lines.filter((l) => l.startsWith('verifying')).at(-1) ?? '',
      /: (\S+ \S+) \/ \1, \d+ members/,
    );
  });

  it('verify on a terminal: the bar ends at the bundle size and counts members', async () => {
    const r = await tty(['verify', bundle, '--key', f.pub]);
    assert.equal(r.code, 0, r.raw);
    const bars = r.screen.filter((l) => l.startsWith('verifying ['));
    assert.equal(bars.length, 1, r.screen.join('\n'));
    assert.match(bars[0] ?? '', /^verifying \[#{24}\] (\S+ \S+) \/ \1, \d+ members/);
  });
});

describe('lading-load fetch progress (built binary, loopback S3)', function () {
  this.timeout(180_000);
  let fx: S3Fixture | undefined;
  before(async () => {
    fx = await startS3Fixture('progress', 'lading-progress-');
  });
  after(async () => {
    await fx?.stop();
  });

  it('fetch of a split bundle: each file has its bar, left at its total, counting files', async () => {
    const s = fx as S3Fixture;
    const out = join(s.root, 'fetched');
    await mkdir(out);
    const r = await runOnTty(
      [
        process.execPath,
        CLI,
        'fetch',
        's3://progress/split/shop-2.4.0.tar',
        '--output',
        out,
        '--endpoint',
        s.server.endpoint,
      ],
      { cwd: REPO_ROOT, env: { ...s.env, NODE_OPTIONS: '' } },
    );
    assert.equal(r.code, 0, r.raw);
    const screen = r.screen.join('\n');
    const bars = r.screen.filter((l) => l.startsWith('fetching split/'));
    assert.equal(bars.length, 3, screen);
    bars.forEach((bar, i) => {
      const m =
        /^fetching split\/shop-2\.4\.0\.tar\.00(\d) \[#{24}\] (\S+ \S+) \/ (\S+ \S+), (\d)\/3 files/.exec(
          bar,
        );
      assert.ok(m, `part ${i}: ${bar}`);
      assert.equal(m[1], String(i));
      assert.equal(m[2], m[3], `the bar of part ${i} ends at its size: ${bar}`);
      assert.equal(m[4], String(i + 1), `part ${i} is counted when done: ${bar}`);
    });
  });
});
