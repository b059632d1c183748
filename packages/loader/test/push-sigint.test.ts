/**
 * `lading-load push` interrupted with SIGINT in the middle of an upload (issue 13): exit 130, the
 * line to rerun (no stack trace), and no upload session left open on the registry. Distribution keeps a session in
 * repositories/NAME/_uploads/ID/ (`startedat`, `data`, `hashstates/`) until it is committed or
 * cancelled. A cancelled one loses `startedat` and `data`, but Distribution 2.8 writes its hash
 * state once more after the DELETE (distribution/distribution#348, #1669), leaving
 * `ID/hashstates/` alone: no session (a request naming it gets BLOB_UPLOAD_UNKNOWN), so not
 * counted.
 */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type RegistryServer,
  registryRequests,
  startRegistry,
  startTcpProxy,
  type TcpProxy,
} from '@lading/testkit';
import { type Fixture, makeFixture, runCli } from './push-helpers.ts';

/** Every open upload session in the registry's storage: `REPO/_uploads/ID` with its `startedat` or `data`. */
async function openUploads(reg: RegistryServer): Promise<string[]> {
  const root = join(reg.dataDir, 'docker', 'registry', 'v2', 'repositories');
  const found: string[] = [];
  const walk = async (dir: string, rel: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.name === '_uploads') {
        for (const id of await readdir(join(dir, e.name))) {
          const files = await readdir(join(dir, e.name, id));
          if (files.includes('startedat') || files.includes('data')) found.push(`${r}/${id}`);
        }
      } else if (!e.name.startsWith('_')) await walk(join(dir, e.name), r);
    }
  };
  await walk(root, '');
  return found;
}

describe('lading-load push: SIGINT mid-upload (built binary, Distribution)', function () {
  this.timeout(300_000);
  let f: Fixture;
  let reg: RegistryServer;
  let proxy: TcpProxy;
  let bundle: string;

  before(async () => {
    // An 8 MiB layer goes up in one streamed PATCH; through the proxy at 2 MiB/s it takes seconds.
    f = await makeFixture(8 * 1024 * 1024);
    bundle = await f.bundle('sigint.tar');
    reg = await startRegistry({ mode: 'http' });
    proxy = await startTcpProxy(reg.host, { upBytesPerSecond: 2 * 1024 * 1024 });
  });
  after(async () => {
    await proxy?.stop();
    await reg?.stop();
    await f?.cleanup();
  });

  it('exits 130 with the line to rerun, and cancels every upload session it opened', async () => {
    let pid = 0;
    const run = runCli(['push', bundle, '--key', f.pub, '--registry', `${proxy.host}/int`, '--plain-http'], {
      env: { NODE_OPTIONS: '' },
      onSpawn: (p) => {
        pid = p;
      },
    });
    // Mid-upload: 3 MiB of request bodies went through (the small blobs, part of the big layer).
    const early = await Promise.race([proxy.whenSent(3 * 1024 * 1024).then(() => undefined), run]);
    if (early) assert.fail(`the push ended before the signal (exit ${early.code}):\n${early.stderr}`);
    const during = await openUploads(reg);
    assert.ok(during.length > 0, 'an upload session is open when the signal comes');
    process.kill(pid, 'SIGINT');
    const { code, stderr } = await run;
    assert.equal(code, 130, `SIGINT exits 130:\n${stderr}`);
    const last = stderr.trimEnd().split('\n').at(-1) ?? '';
    assert.match(last, /^to finish, run the same command again: lading-load push /, stderr);
    assert.ok(last.includes(bundle), last);
    assert.match(
      stderr,
      new RegExp(
        `run the same command again: lading-load push \\S+sigint\\.tar --key \\S+ --registry ${proxy.host}/int`,
      ),
    );
    assert.doesNotMatch(stderr, /^\s+at /m);
    const left = await openUploads(reg);
    assert.deepEqual(left, [], `upload sessions left open:\n${stderr}`);
    const deletes = (await registryRequests(reg)).filter((r) => r.method === 'DELETE');
    assert.ok(deletes.length > 0, 'the sessions were cancelled with DELETE');
    for (const d of deletes) assert.ok(d.status < 300, `DELETE ${d.uri} answered ${d.status}`);
  });
});
