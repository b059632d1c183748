import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isolatedEnv, startTcpProxy, type TcpProxy } from '@lading/testkit';
import { BIN, ensureBuilt, type Fixture, ROOT, runCli, startFixture } from './helpers.ts';

describe('lading-build create: SIGINT (built binary)', function () {
  this.timeout(300_000);
  let fx: Fixture;
  let proxy: TcpProxy;

  before(async () => {
    await ensureBuilt();
    fx = await startFixture({ bigBytes: 4 * 1024 * 1024 });
    // The registry's answers at 1 MiB/s, so the pull takes seconds.
    proxy = await startTcpProxy(fx.registry.host, { bytesPerSecond: 1024 * 1024 });
  });
  after(async () => {
    await proxy?.stop();
    await fx?.stop();
  });

  it('stops on SIGINT leaving nothing at the output; the re-run reuses what was downloaded', async () => {
    const spec = join(fx.dir, 'slow.yaml');
    await writeFile(
      spec,
      `apiVersion: lading/v1\nname: slow\nversion: "1"\nimages:\n  - ${proxy.host}/demo/app:1.0\n  - ${proxy.host}/demo/big:1.0\n`,
    );
    const out = join(fx.dir, 'out');
    const cache = join(fx.dir, 'cache');
    const args = [
      BIN,
      'create',
      '--spec',
      spec,
      '--output',
      `${out}/`,
      '--key',
      fx.key,
      '--cache',
      cache,
      '--plain-http-host',
      proxy.host,
    ];
    const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...isolatedEnv(), NODE_OPTIONS: '' } });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // Interrupt in the middle of the pull: once 1.5 MiB of the registry's answers went through (the
    // small image whole, part of the 4 MiB layer). A run that ends first fails below on its exit code.
    await Promise.race([proxy.whenReceived(1.5 * 1024 * 1024), exited]);
    assert.match(stderr, /image\(s\)/, 'the plan line came before the pull');
    child.kill('SIGINT');
    const code = await exited;
    assert.equal(code, 130, `SIGINT exits 130: ${stderr}`);
    assert.match(stderr, /abort|interrupt/i);
    assert.deepEqual(await readdir(out).catch(() => []), [], 'no bundle, no temporary file');

    const again = await runCli(args.slice(1).concat(['--json']));
    assert.equal(again.code, 0, again.stderr);
    const s = JSON.parse(again.stdout) as { downloadedBytes: number; images: number };
    assert.equal(s.images, 2);
    const total = fx.image('demo/big').totalSize + fx.image('demo/app').totalSize;
    assert.ok(s.downloadedBytes < total, `re-run downloaded ${s.downloadedBytes} of ${total}`);
    assert.deepEqual(await readdir(out), ['slow-1.tar']);
  });

  it('after kill -9 the re-run takes the blobs the killed run finished, then removes its leftovers', async () => {
    const spec = join(fx.dir, 'killed.yaml');
    await writeFile(
      spec,
      `apiVersion: lading/v1\nname: killed\nversion: "1"\nimages:\n  - ${proxy.host}/demo/app:1.0\n  - ${proxy.host}/demo/big:1.0\n`,
    );
    const out = join(fx.dir, 'out-killed');
    const cache = join(fx.dir, 'cache-killed');
    const args = [BIN, 'create', '--spec', spec, '--output', `${out}/`, '--key', fx.key, '--cache', cache];
    args.push('--plain-http-host', proxy.host);
    const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...isolatedEnv(), NODE_OPTIONS: '' } });
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
      child.on('exit', (_c, sig) => resolve(sig)),
    );
    const before = proxy.received;
    await Promise.race([proxy.whenReceived(before + 2.5 * 1024 * 1024), exited]);
    child.kill('SIGKILL');
    assert.equal(await exited, 'SIGKILL', 'killed while writing (not finished before)');
    const left = await readdir(out);
    assert.ok(!left.includes('killed-1.tar'), 'no bundle under the final name');
    assert.ok(
      left.some((n) => n.includes('.journal.')),
      `a journal beside the output: ${left.join(', ')}`,
    );

    const again = await runCli(args.slice(1).concat(['--json']));
    assert.equal(again.code, 0, again.stderr);
    const s = JSON.parse(again.stdout) as { downloadedBytes: number };
    const total = fx.image('demo/big').totalSize + fx.image('demo/app').totalSize;
    assert.ok(s.downloadedBytes < total, `re-run downloaded ${s.downloadedBytes} of ${total}`);
    assert.deepEqual(await readdir(out), ['killed-1.tar'], 'the leftovers are gone');
  });
});
