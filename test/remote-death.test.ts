import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startTripwire, type Tripwire } from '@lading/testkit';
import { type S3Server, startS3Server } from '@lading/testkit/s3';
import { type Fixture, makeFixture } from '../packages/loader/test/push-helpers.ts';

/**
 * Issue 13: every remote failure ends in exit 4 naming the remote and saying to run the command
 * again, also when the remote dies in the middle of a transfer. The S3 stand-in is stopped once
 * part of the upload (publish) or download (fetch) went through testkit's tripwire.
 * (push: packages/loader/test/push-remote-death.test.ts.)
 */
const root = fileURLToPath(new URL('..', import.meta.url));
const pexec = promisify(execFile);
const BIN = {
  build: join(root, 'packages/builder/bin/run.js'),
  load: join(root, 'packages/loader/bin/run.js'),
};

async function run(cli: keyof typeof BIN, args: string[], env: NodeJS.ProcessEnv) {
  try {
    const r = await pexec(process.execPath, [BIN[cli], ...args], { env: { ...process.env, ...env } });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('S3 dies mid-transfer: publish and fetch exit 4, name it, say to rerun', function () {
  this.timeout(300_000);
  let dir: string;
  let f: Fixture;
  let bundle: string;
  let s3: S3Server;
  let wire: Tripwire | undefined;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lading-s3-death-'));
    f = await makeFixture(24 * 1024 * 1024);
    bundle = await f.bundle('shop.tar');
  });
  beforeEach(async () => {
    s3 = await startS3Server({ buckets: ['dropzone'], minPartSize: 5 * 1024 * 1024 });
    env = {
      AWS_ACCESS_KEY_ID: s3.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
      AWS_REGION: s3.region,
    };
  });
  afterEach(async () => {
    await wire?.stop();
    await s3?.stop();
  });
  after(async () => {
    await f?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const check = (r: { code: number; stderr: string }, what: string) => {
    assert.ok(wire?.done, `${what}: the S3 server was stopped mid-transfer`);
    assert.equal(r.code, 4, `${what}: exit ${r.code}\n${r.stderr}`);
    assert.doesNotMatch(r.stderr, /^\s+at |unsettled top-level await/m);
    assert.match(r.stderr, /dropzone|127\.0\.0\.1/, `${what} names the remote`);
    assert.match(r.stderr, /run the same command again/);
  };

  it('publish: the store dies during the upload', async () => {
    wire = await startTripwire({
      target: s3.endpoint.replace(/^http:\/\//, ''),
      afterBytes: 8 * 1024 * 1024,
      direction: 'up',
      onTrip: () => s3.stop(),
    });
    const r = await run(
      'build',
      ['publish', bundle, 's3://dropzone/rel/', '--endpoint', `http://${wire.host}`, '--part-size', '5MiB'],
      env,
    );
    check(r, 'publish');
  });

  it('fetch: the store dies during the download; nothing is left at --output', async () => {
    const up = await run('build', ['publish', bundle, 's3://dropzone/rel/', '--endpoint', s3.endpoint], env);
    assert.equal(up.code, 0, up.stderr);
    wire = await startTripwire({
      target: s3.endpoint.replace(/^http:\/\//, ''),
      afterBytes: 8 * 1024 * 1024,
      direction: 'down',
      onTrip: () => s3.stop(),
    });
    const out = join(dir, 'fetched');
    const r = await run(
      'load',
      ['fetch', 's3://dropzone/rel/shop.tar', '--output', `${out}.tar`, '--endpoint', `http://${wire.host}`],
      env,
    );
    check(r, 'fetch');
    assert.deepEqual(
      (await readdir(dir)).filter((n) => n.startsWith('fetched')),
      [],
    );
  });
});
