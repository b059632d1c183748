import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type RegistryServer,
  skopeo,
  skopeoDigest,
  startRegistry,
  startTcpProxy,
  type TcpProxy,
} from '@lading/testkit';
import type { PushResult } from '../src/lib/push/index.ts';
import { type Fixture, makeFixture, runCli, storedRepositories } from './push-helpers.ts';

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path)) h.update(c as Buffer);
  return `sha256:${h.digest('hex')}`;
}

/** Every committed blob in the registry's storage, checked against its name (nothing unverified committed). */
async function storedBlobs(reg: RegistryServer): Promise<string[]> {
  const root = join(reg.dataDir, 'docker/registry/v2/blobs/sha256');
  const out: string[] = [];
  let prefixes: string[] = [];
  try {
    prefixes = await readdir(root);
  } catch {
    return out;
  }
  for (const p of prefixes) {
    for (const hex of await readdir(join(root, p))) {
      const file = join(root, p, hex, 'data');
      const actual = await sha256File(file).catch(() => undefined);
      if (actual === undefined) continue; // a folder without data yet is not a blob
      assert.equal(actual, `sha256:${hex}`, `stored blob ${hex} does not hash to its name`);
      out.push(`sha256:${hex}`);
    }
  }
  return out.sort();
}

function targetOf(host: string, ref: string): string {
  if (ref.startsWith('charts/')) return `${host}/site/${ref}`;
  return `${host}/site/${ref.slice(ref.indexOf('/') + 1)}`;
}

describe('lading-load push: killed at any moment, a re-run completes', function () {
  this.timeout(300_000);
  let f: Fixture;
  let bundle: string;
  let regA: RegistryServer;
  let proxy: TcpProxy;
  let regB: RegistryServer;

  before(async () => {
    f = await makeFixture(24 * 1024 * 1024);
    bundle = await f.bundle('resume.tar');
    regA = await startRegistry({ mode: 'http' });
    proxy = await startTcpProxy(regA.host);
    regB = await startRegistry({ mode: 'http' });
  });
  after(async () => {
    await proxy?.stop();
    await regA?.stop();
    await regB?.stop();
    await f?.cleanup();
  });

  it('SIGKILL during the push, re-run: the registry equals a clean push', async () => {
    const args = [
      'push',
      bundle,
      '--key',
      f.pub,
      '--registry',
      `${proxy.host}/site`,
      '--plain-http',
      '--concurrency',
      '2',
    ];
    let kills = 0;
    // Kill early (the first requests) and in the middle of the big layer: once the proxy in front
    // of the registry has forwarded that many bytes of this run's requests.
    for (const grow of [16 * 1024, 2 * 1024 * 1024, 8 * 1024 * 1024]) {
      const start = proxy.sent;
      let done = false;
      const r = await runCli(args, {
        onSpawn: (pid) => {
          void proxy.whenSent(start + grow).then(() => {
            if (!done) process.kill(pid, 'SIGKILL');
          });
        },
      });
      done = true;
      if (r.signal === 'SIGKILL') kills++;
      else assert.equal(r.code, 0, r.stderr);
      // After a kill: every tag that exists names exactly the bundled image, and every stored
      // blob hashes to its name.
      for (const e of f.entries) {
        const at = targetOf(regA.host, e.ref);
        const d = await skopeoDigest(at, regA).catch(() => undefined);
        if (d !== undefined) assert.equal(d, e.digest, `${at} after kill`);
      }
      await storedBlobs(regA);
    }
    assert.ok(kills >= 1, 'no run was killed mid-push; the push was too fast to interrupt');
    console.log(`      ${kills} run(s) killed with SIGKILL mid-push`);

    const t0 = Date.now();
    const again = await runCli([...args, '--json']);
    assert.equal(again.code, 0, again.stderr);
    const res = JSON.parse(again.stdout) as PushResult;
    assert.ok(res.ok);
    const clean = await runCli([
      'push',
      bundle,
      '--key',
      f.pub,
      '--registry',
      `${regB.host}/site`,
      '--plain-http',
      '--json',
    ]);
    assert.equal(clean.code, 0, clean.stderr);
    const cleanRes = JSON.parse(clean.stdout) as PushResult;
    console.log(
      `      resumed push: ${Date.now() - t0} ms; clean push of ${(cleanRes.summary.bytes / 1048576).toFixed(1)} MiB: ${cleanRes.summary.durationMs} ms (verify ${cleanRes.summary.verifyMs} ms)`,
    );

    for (const e of f.entries) {
      const a = await skopeoDigest(targetOf(regA.host, e.ref), regA);
      const b = await skopeoDigest(targetOf(regB.host, e.ref), regB);
      assert.equal(a, e.digest, e.ref);
      assert.equal(b, e.digest, e.ref);
    }
    assert.deepEqual(await storedRepositories(regA), await storedRepositories(regB));
    // Same tags everywhere, and the same committed blobs (each hashing to its name).
    for (const repo of await storedRepositories(regB)) {
      const ta = JSON.parse(
        (await skopeo(['list-tags', `docker://${regA.host}/${repo}`], { registry: regA })).stdout,
      );
      const tb = JSON.parse(
        (await skopeo(['list-tags', `docker://${regB.host}/${repo}`], { registry: regB })).stdout,
      );
      assert.deepEqual([...ta.Tags].sort(), [...tb.Tags].sort(), repo);
    }
    assert.deepEqual(await storedBlobs(regA), await storedBlobs(regB));
    // the big image reads back completely
    await skopeo(
      ['copy', '--quiet', `docker://${regA.host}/site/demo/big:1.0`, `oci:${join(f.dir, 'back')}:big`],
      {
        registry: regA,
      },
    );
  });
});
