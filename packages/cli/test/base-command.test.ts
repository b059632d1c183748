import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * The error model of every command (issue 13): typed errors print "Error: … / hint: …" with
 * the exit code README.md gives them, our own bugs exit 1 with where to report them and no stack trace,
 * a command that stops with work pending is exit 1 (not Node's 13), and --json errors have one
 * shape: { "error": { name, code, message, hint?, exitCode } }.
 */
const FIXTURE = fileURLToPath(new URL('./fixtures/commands.ts', import.meta.url));

function run(...args: string[]) {
  const r = spawnSync(process.execPath, ['--conditions=lading-source', FIXTURE, ...args], {
    encoding: 'utf8',
    env: { ...process.env, LADING_DEBUG: '' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const STACK = /^\s+at /m;

describe('LadingCommand error model', function () {
  this.timeout(60_000);

  it('a bug in Lading: exit 1, says where to report it, no stack trace', () => {
    const r = run('--mode', 'bug');
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^Error \(unexpected\): Cannot read properties/m);
    assert.match(r.stderr, /bug in Lading.*report it/);
    assert.doesNotMatch(r.stderr, STACK);
  });

  it('LADING_DEBUG=1 adds the stack trace', () => {
    const r = spawnSync(process.execPath, ['--conditions=lading-source', FIXTURE, '--mode', 'bug'], {
      encoding: 'utf8',
      env: { ...process.env, LADING_DEBUG: '1' },
    });
    assert.match(r.stderr, STACK);
  });

  it('a command that stops with work pending is exit 1 and a report, not Node exit 13', () => {
    const r = run('--mode', 'hang');
    assert.equal(r.code, 1, r.stderr);
    assert.doesNotMatch(r.stderr, /unsettled top-level await/);
    assert.match(r.stderr, /work still pending/);
  });

  it('bad input is exit 2 with its hint; a bad flag is exit 2 with a --help hint', () => {
    const r = run('--mode', 'input');
    assert.equal(r.code, 2);
    assert.equal(r.stderr, 'Error: spec.yaml: bad\n  hint: fix it\n');
    const u = run('--nope');
    assert.equal(u.code, 2, u.stderr);
    assert.match(u.stderr, /Nonexistent flag: --nope/);
    assert.match(u.stderr, /--help/);
    assert.doesNotMatch(u.stderr, STACK);
  });

  it('a remote failure is exit 4 and says to run the command again', () => {
    const r = run('--mode', 'remote');
    assert.equal(r.code, 4);
    assert.match(r.stderr, /run the same command again \(nothing is lost\)/);
  });

  it("a registry that speaks plain HTTP: the hint names the command's own flag", () => {
    const r = run('--mode', 'plain-http');
    assert.equal(r.code, 4);
    assert.match(r.stderr, /reach it with --plain-http-host HOST/);
    assert.doesNotMatch(r.stderr, /--insecure/);
  });

  it('--json: every error has the one shape, on stdout only', () => {
    for (const [args, code, kind] of [
      [['--mode', 'bug'], 1, 'UNEXPECTED'],
      [['--mode', 'input'], 2, 'INVALID_INPUT'],
      [['--mode', 'remote'], 4, 'REMOTE_FAILED'],
      [['--nope'], 2, 'USAGE'],
    ] as const) {
      const r = run(...args, '--json');
      assert.equal(r.code, code, r.stderr);
      assert.equal(r.stderr, '', `nothing on stderr with --json: ${r.stderr}`);
      const doc = JSON.parse(r.stdout) as { error: Record<string, unknown> };
      assert.equal(typeof doc.error, 'object');
      assert.deepEqual(
        Object.keys(doc.error).filter((k) => k !== 'hint'),
        ['name', 'code', 'message', 'exitCode'],
      );
      assert.equal(doc.error.code, kind);
      assert.equal(doc.error.exitCode, code);
    }
  });
});
