import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startRegistry } from '@lading/testkit';
import { type Fixture, makeFixture } from '../packages/loader/test/push-helpers.ts';

/**
 * Issue 13: no command prints a stack trace, and exit codes follow README.md, whatever goes
 * wrong. Every command of both CLIs (built binaries) is given bad input, a missing file and —
 * where it talks to one — a dead remote: a real Distribution registry started and killed, and an
 * S3 endpoint where nothing listens.
 */
const root = fileURLToPath(new URL('..', import.meta.url));
const pexec = promisify(execFile);
const BIN = {
  build: join(root, 'packages/builder/bin/run.js'),
  load: join(root, 'packages/loader/bin/run.js'),
};

interface Case {
  cli: keyof typeof BIN;
  args: string[];
  /** Exit code (README.md) this failure must have. */
  exit: 2 | 3 | 4;
}

async function run(c: Case, env: NodeJS.ProcessEnv) {
  try {
    const r = await pexec(process.execPath, [BIN[c.cli], ...c.args], {
      env: { ...process.env, ...env },
      timeout: 120_000,
    });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('no stack traces, README exit codes: every command, bad input, missing file, dead remote', function () {
  this.timeout(600_000);
  let dir: string;
  let f: Fixture;
  let bundle: string;
  let dead: string;
  let env: NodeJS.ProcessEnv;
  const cases: Array<Case & { what: string }> = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lading-nostack-'));
    f = await makeFixture(64 * 1024);
    bundle = await f.bundle('shop.tar');
    // A real registry, started and killed: its port now refuses connections.
    const reg = await startRegistry({ mode: 'http' });
    dead = reg.host;
    await reg.stop();
    env = {
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
      AWS_REGION: 'us-east-1',
      LADING_CACHE: join(dir, 'cache'),
      LADING_STATE_DIR: join(dir, 'state'),
      DOCKER_CONFIG: join(dir, 'docker'),
      REGISTRY_AUTH_FILE: join(dir, 'auth.json'),
    };
    const spec = join(dir, 'dead.yaml');
    await writeFile(
      spec,
      `apiVersion: lading/v1\nname: x\nversion: 1.0.0\nimages:\n  - ${dead}/demo/app:1.0\n`,
    );
    const badSpec = join(dir, 'bad.yaml');
    await writeFile(badSpec, 'apiVersion: lading/v1\nname: x\nimages: [a\n');
    const missing = join(dir, 'nope', 'missing.tar');
    const s3dead = `http://${dead}`;
    const out = join(dir, 'out');
    cases.push(
      // bad input
      { what: 'an unknown flag', cli: 'build', args: ['create', '--no-such-flag'], exit: 2 },
      {
        what: 'a spec with a YAML error',
        cli: 'build',
        args: ['create', '--spec', badSpec, '--output', out, '--unsigned'],
        exit: 2,
      },
      { what: 'an unknown command', cli: 'load', args: ['verfy', bundle], exit: 2 },
      { what: 'a bad size', cli: 'build', args: ['split', bundle, '--size', 'lots'], exit: 2 },
      {
        what: 'a bad registry',
        cli: 'load',
        args: ['push', bundle, '--key', f.pub, '--registry', 'https://x/'],
        exit: 2,
      },
      {
        what: 'a bad format',
        cli: 'load',
        args: ['mirror-config', bundle, '--registry', 'r.local', '--format', 'nope'],
        exit: 2,
      },
      {
        what: 'a bad address',
        cli: 'load',
        args: ['serve', bundle, '--skip-verify', '--address', 'nowhere'],
        exit: 2,
      },
      { what: 'a bad s3 URL', cli: 'load', args: ['fetch', 'http://x/y', '--output', out], exit: 2 },
      {
        what: 'a key prefix that is a folder',
        cli: 'build',
        args: ['keys', 'generate', '--output', `${dir}/`],
        exit: 2,
      },
      // missing files
      {
        what: 'a missing spec',
        cli: 'build',
        args: ['create', '--spec', missing, '--output', out, '--unsigned'],
        exit: 2,
      },
      { what: 'a missing chart', cli: 'build', args: ['images', missing], exit: 2 },
      { what: 'a missing bundle', cli: 'build', args: ['inspect', missing], exit: 2 },
      { what: 'a missing bundle', cli: 'build', args: ['split', missing, '--size', '1MB'], exit: 2 },
      {
        what: 'a missing bundle',
        cli: 'build',
        args: ['publish', missing, 's3://dropzone/p/', '--endpoint', s3dead],
        exit: 2,
      },
      { what: 'a missing bundle', cli: 'load', args: ['verify', missing, '--key', f.pub], exit: 2 },
      { what: 'a missing key', cli: 'load', args: ['verify', bundle, '--key', missing], exit: 2 },
      {
        what: 'a missing bundle',
        cli: 'load',
        args: ['push', missing, '--key', f.pub, '--registry', dead],
        exit: 2,
      },
      {
        what: 'a missing bundle',
        cli: 'load',
        args: ['install', missing, '--registry', 'r.local', '--dry-run', '--skip-verify'],
        exit: 2,
      },
      {
        what: 'a missing bundle',
        cli: 'load',
        args: ['mirror-config', missing, '--registry', 'r.local', '--format', 'k3s', '--skip-verify'],
        exit: 2,
      },
      {
        what: 'a missing bundle',
        cli: 'load',
        args: ['serve', missing, '--skip-verify', '--address', '127.0.0.1:0'],
        exit: 2,
      },
      { what: 'a missing bundle', cli: 'load', args: ['diff', missing, bundle], exit: 2 },
      // dead remotes
      {
        what: 'a dead source registry',
        cli: 'build',
        args: ['create', '--spec', spec, '--output', out, '--unsigned'],
        exit: 4,
      },
      {
        what: 'a dead chart registry',
        cli: 'build',
        args: ['images', `oci://${dead}/charts/x`, '--version', '1.0.0'],
        exit: 4,
      },
      {
        what: 'a dead S3',
        cli: 'build',
        args: ['publish', bundle, 's3://dropzone/p/', '--endpoint', s3dead],
        exit: 4,
      },
      {
        what: 'a dead target registry',
        cli: 'load',
        args: ['push', bundle, '--key', f.pub, '--registry', `${dead}/site`],
        exit: 4,
      },
      {
        what: 'a dead S3',
        cli: 'load',
        args: ['fetch', 's3://dropzone/x.tar', '--output', out, '--endpoint', s3dead],
        exit: 4,
      },
      {
        what: 'a dead S3',
        cli: 'load',
        args: ['verify', 's3://dropzone/x.tar', '--key', f.pub, '--endpoint', s3dead],
        exit: 4,
      },
    );
  });
  after(async () => {
    await f?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('every case: its exit code, an error on stderr, no stack trace (also with --json)', async () => {
    assert.ok(cases.length > 20);
    const problems: string[] = [];
    for (const [i, c] of cases.entries()) {
      // --json for every other case: the shape is the same code path; the runs are the cost.
      for (const json of i % 2 === 0 ? [false, true] : [false]) {
        const args = json ? [...c.args, '--json'] : c.args;
        const r = await run({ ...c, args }, env);
        const line = `lading-${c.cli} ${args.join(' ')} (${c.what})`;
        if (/^\s+at /m.test(r.stderr)) problems.push(`${line}: stack trace on stderr:\n${r.stderr}`);
        if (r.code !== c.exit)
          problems.push(`${line}: exit ${r.code}, expected ${c.exit}:\n${r.stderr}${r.stdout}`);
        if (!json && !/Error/.test(r.stderr)) problems.push(`${line}: no error on stderr`);
        if (json) {
          try {
            const doc = JSON.parse(r.stdout) as { error?: { code?: string; exitCode?: number } };
            if (doc.error?.exitCode !== c.exit)
              problems.push(`${line}: --json error ${JSON.stringify(doc.error)}`);
          } catch {
            problems.push(`${line}: stdout is not one JSON document:\n${r.stdout}`);
          }
        }
      }
    }
    assert.deepEqual(problems, []);
  });
});
