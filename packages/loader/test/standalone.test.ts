/**
 * The standalone loader: scripts/build-loader makes one executable (Node single executable
 * application) and it runs where no `node` is on PATH. The build runs once, into a temp folder;
 * when it fails, the first test fails with the build's output and the others are skipped (so the
 * run reports one failure, never a silent pass).
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { copyStandaloneLoader } from '@lading/core';
import { type CollectedRun, type RegistryServer, runCollect, startRegistry } from '@lading/testkit';
import { buildTestBundle, memberOffset, type TestBundle } from './verify-fixtures.ts';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const COMMANDS_DIR = join(REPO, 'packages', 'loader', 'src', 'commands');
const EXE_NAME = 'lading-load-linux-x64';
/** Tools a field host has; `node` is deliberately not among them. */
const TOOLS = ['sh', 'tar', 'sha256sum', 'cat', 'ls'];

describe('standalone lading-load (single executable, no Node.js on PATH)', function () {
  this.timeout(600_000);
  let root: string;
  let exe: string;
  let env: NodeJS.ProcessEnv;
  let buildError: string | undefined;
  let buildOutput = '';
  let bundle: TestBundle | undefined;

  /** Runs the executable with the node-less environment. */
  const run = (args: string[], input?: string): Promise<CollectedRun> =>
    runCollect(exe, args, { env, cwd: root, input });
  const needBuild = (ctx: Mocha.Context) => {
    if (buildError !== undefined) ctx.skip();
  };
  const needBundle = async (): Promise<TestBundle> => {
    bundle ??= await buildTestBundle(join(root, 'bundle'));
    return bundle;
  };

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'lading-standalone-'));
    const out = join(root, 'out');
    try {
      const r = await promisify(execFile)('bash', [join(REPO, 'scripts', 'build-loader'), '--out', out], {
        cwd: REPO,
        maxBuffer: 16 * 1024 * 1024,
      });
      buildOutput = `${r.stdout}${r.stderr}`;
      exe = join(out, EXE_NAME);
      if (!existsSync(exe)) buildError = `scripts/build-loader exited 0 but wrote no ${exe}`;
    } catch (err) {
      const e = err as { message: string; stdout?: string; stderr?: string };
      buildError = `${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`;
    }
    // A PATH of a field host without Node: a folder with links to a few system tools only.
    const bin = join(root, 'bin');
    await mkdir(bin);
    for (const t of TOOLS) {
      const p = [`/usr/bin/${t}`, `/bin/${t}`].find((x) => existsSync(x));
      if (p) await symlink(p, join(bin, t));
    }
    const home = join(root, 'home');
    await mkdir(home);
    env = { PATH: bin, HOME: home, LANG: 'C.UTF-8', CI: '1' };
  });
  after(async () => {
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('scripts/build-loader builds the executable and its .sha256', () => {
    if (buildError !== undefined) assert.fail(`scripts/build-loader failed:\n${buildError}`);
    assert.match(buildOutput, new RegExp(`${EXE_NAME} +\\d+ bytes`), 'it prints the size');
    const sum = readFileSync(`${exe}.sha256`, 'utf8');
    const hex = createHash('sha256').update(readFileSync(exe)).digest('hex');
    assert.equal(sum, `${hex}  ${EXE_NAME}\n`);
  });

  it('the test PATH has no node, and the executable does not need one', function () {
    needBuild(this);
    const r = spawnSync('/bin/sh', ['-c', 'command -v node || command -v nodejs'], { env, encoding: 'utf8' });
    assert.notEqual(r.status, 0, `node found on the test PATH: ${r.stdout}`);
    assert.equal(spawnSync('/bin/sh', ['-c', 'command -v tar'], { env }).status, 0, 'tar is on the PATH');
  });

  it('--version names the loader, its version and the embedded Node', async function () {
    needBuild(this);
    const r = await run(['--version']);
    assert.equal(r.status, 0, r.stderr);
    const { version } = JSON.parse(readFileSync(join(REPO, 'packages', 'loader', 'package.json'), 'utf8'));
    assert.match(
      r.stdout.trim(),
      new RegExp(`^@lading/loader/${version.replace(/\./g, '\\.')} linux-x64 node-v\\d+`),
    );
    assert.equal(r.stderr, '', 'no warnings (experimental SEA, engines) on stderr');
  });

  it('--help lists every command built from packages/loader/src/commands', async function () {
    needBuild(this);
    const r = await run(['--help']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /USAGE\n +\$ lading-load \[COMMAND\]/);
    const ids = readdirSync(COMMANDS_DIR)
      .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
      .map((f) => f.replace(/\.ts$/, ''));
    assert.ok(ids.length > 0, 'the loader has commands');
    for (const id of ids) assert.match(r.stdout, new RegExp(`^ +${id} `, 'm'), `${id} in --help`);
    const v = await run(['verify', '--help']);
    assert.equal(v.status, 0, v.stderr);
    assert.match(v.stdout, /--key/);
  });

  it('an unknown command is exit 2 (oclif usage error), not a crash', async function () {
    needBuild(this);
    const r = await run(['no-such-command']);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /"no-such-command" is not a lading-load command/);
    assert.doesNotMatch(r.stderr, /at .*\(.*:\d+:\d+\)/, 'no stack trace');
  });

  it('"help COMMAND" works as in the Node CLI (@oclif/plugin-help built in)', async function () {
    needBuild(this);
    const viaHelp = await run(['help', 'push']);
    assert.equal(viaHelp.status, 0, viaHelp.stderr);
    assert.match(viaHelp.stdout, /USAGE\n +\$ lading-load push /);
    const viaFlag = await run(['push', '--help']);
    assert.equal(viaFlag.status, 0, viaFlag.stderr);
    assert.equal(viaHelp.stdout, viaFlag.stdout, 'help push = push --help');
    const top = await run(['help']);
    assert.equal(top.status, 0, top.stderr);
    assert.match(top.stdout, /^ +verify /m);
  });

  it('a mistyped command names the nearest one, exit 2, also with --json (the not-found hook built in)', async function () {
    needBuild(this);
    const r = await run(['verfy', 'b.tar']);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /did you mean "verify"\?/);
    assert.match(r.stderr, /hint: lading-load help lists the commands/);
    const j = await run(['verfy', '--json']);
    assert.equal(j.status, 2, j.stderr);
    assert.equal(JSON.parse(j.stdout).error.code, 'UNKNOWN_COMMAND');
  });

  it('verify: exit 0 on a good bundle, 3 on a tampered copy', async function () {
    needBuild(this);
    const t = await needBundle();
    const good = await run(['verify', t.bundle, '--key', t.pub]);
    assert.equal(good.status, 0, `${good.stdout}\n${good.stderr}`);
    const json = await run(['verify', t.bundle, '--key', t.pub, '--json']);
    assert.equal(json.status, 0, json.stderr);
    assert.equal(JSON.parse(json.stdout).ok, true);

    // Flip one byte in the middle of the largest blob.
    const tar = readFileSync(t.bundle);
    let best = { offset: 0, size: -1 };
    for (const img of t.images) {
      for (const b of img.blobs) {
        const m = memberOffset(tar, `blobs/sha256/${b.slice('sha256:'.length)}`);
        if (m.size > best.size) best = m;
      }
    }
    const at = best.offset + Math.floor(best.size / 2);
    tar[at] = (tar[at] ?? 0) ^ 0xff;
    const tampered = join(root, 'tampered.tar');
    writeFileSync(tampered, tar);
    const bad = await run(['verify', tampered, '--key', t.pub]);
    assert.equal(bad.status, 3, `${bad.stdout}\n${bad.stderr}`);
    const wrongKey = await run(['verify', t.bundle, '--key', t.otherPub]);
    assert.equal(wrongKey.status, 3, wrongKey.stderr);
  });

  it('diff (issue 12 §1): two bundles verified with --key, human view and --json; a tampered NEW is exit 3', async function () {
    needBuild(this);
    const t = await needBundle();
    // Another bundle of the same images, signed with another key (so no --key for the pair).
    const other = await buildTestBundle(join(root, 'bundle-other'));
    const same = await run(['diff', t.bundle, t.bundle, '--key', t.pub]);
    assert.equal(same.status, 0, `${same.stdout}\n${same.stderr}`);
    assert.match(same.stdout, /The bundles are identical/);
    const json = await run(['diff', t.bundle, other.bundle, '--json']);
    assert.equal(json.status, 0, json.stderr);
    const j = JSON.parse(json.stdout) as {
      old: { bundle: string; verified: boolean };
      new: { bundle: string };
    };
    assert.deepEqual([j.old.bundle, j.new.bundle, j.old.verified], [t.bundle, other.bundle, false]);
    const tampered = join(root, 'diff-tampered.tar');
    const tar = readFileSync(t.bundle);
    const m = memberOffset(tar, `blobs/sha256/${t.images[0]!.blobs[0]!.slice('sha256:'.length)}`);
    tar[m.offset] = (tar[m.offset] ?? 0) ^ 0xff;
    writeFileSync(tampered, tar);
    const bad = await run(['diff', t.bundle, tampered, '--key', t.pub]);
    assert.equal(bad.status, 3, `${bad.stdout}\n${bad.stderr}`);
    assert.match(bad.stderr, /diff-tampered\.tar/);
  });

  it('travels beside a bundle: copyStandaloneLoader adds it to NAME.tar.sha256 (what create --with-loader does)', async function () {
    needBuild(this);
    const t = await needBundle();
    const copy = await copyStandaloneLoader(t.bundle, { source: exe, key: t.key });
    assert.equal(copy.path, join(dirname(t.bundle), EXE_NAME));
    // The operator's first check on site, with coreutils only: the bundle and the loader.
    const check = spawnSync('sha256sum', ['-c', basename(copy.checksumFile)], {
      cwd: dirname(t.bundle),
      encoding: 'utf8',
    });
    assert.equal(check.status, 0, check.stderr);
    assert.match(check.stdout, new RegExp(`${EXE_NAME}: OK`));
    // The copied loader runs without Node and verifies the bundle beside it.
    const child = spawnSync(copy.path, ['verify', t.bundle, '--key', t.pub], {
      env,
      cwd: root,
      encoding: 'utf8',
    });
    assert.equal(child.status, 0, child.stderr);
  });

  describe('push into a registry', () => {
    let reg: RegistryServer | undefined;
    after(async () => {
      await reg?.stop();
    });

    it('push: every image lands in a plain-HTTP registry with its digest', async function () {
      needBuild(this);
      if (!existsSync('/usr/bin/docker-registry'))
        assert.fail('docker-registry is not installed: run scripts/setup');
      const t = await needBundle();
      reg = await startRegistry({ mode: 'http' });
      const r = await run([
        'push',
        t.bundle,
        '--key',
        t.pub,
        '--registry',
        `${reg.host}/standalone`,
        '--plain-http',
        '--json',
      ]);
      assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
      const app = t.images.find((i) => i.ref === 'demo/app:1.0');
      assert.ok(app);
      const res = await fetch(`${reg.url}/v2/standalone/demo/app/manifests/1.0`, {
        method: 'HEAD',
        headers: { accept: app.mediaType },
      });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('docker-content-digest'), app.digest);
      const chart = await fetch(`${reg.url}/v2/standalone/${t.chart.ref.replace(':', '/manifests/')}`, {
        method: 'HEAD',
        headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
      });
      assert.equal(chart.status, 200);
      assert.equal(chart.headers.get('docker-content-digest'), t.chart.digest);
    });
  });
});
