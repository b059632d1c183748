import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openBundle } from '@lading/core';
import { type RegistryServer, registryRequests, skopeo, skopeoDigest, startRegistry } from '@lading/testkit';
import type { PushResult } from '../src/lib/push/index.ts';
import {
  type BundleEntry,
  type Fixture,
  flipByte,
  makeFixture,
  registryFlags,
  runCli,
  storedBlobCount,
  storedRepositories,
} from './push-helpers.ts';

/** Where an entry lands under `prefix` (README.md, image paths at the target): source host dropped. */
function targetOf(host: string, prefix: string, ref: string): string {
  const p = prefix ? `${prefix}/` : '';
  if (ref.startsWith('charts/')) return `${host}/${p}${ref}`;
  const noHost = ref.slice(ref.indexOf('/') + 1);
  return `${host}/${p}${noHost}`;
}

async function assertDigests(reg: RegistryServer, prefix: string, entries: Array<[string, BundleEntry]>) {
  for (const [ref, e] of entries) {
    const at = targetOf(reg.host, prefix, ref);
    assert.equal(await skopeoDigest(at, reg), e.digest, `${ref} at ${at}`);
  }
}

/** Offset and size of the largest blob in the bundle's tar (read through our own reader). */
async function largestBlob(bundlePath: string, _root: string): Promise<{ offset: number; size: number }> {
  const b = await openBundle(bundlePath);
  try {
    let best = { offset: 0, size: -1 };
    for (const m of b.members.values()) {
      if (m.name.startsWith('blobs/') && m.size > best.size) best = { offset: m.offset, size: m.size };
    }
    return best;
  } finally {
    await b.close();
  }
}

function parseJson(stdout: string): PushResult {
  return JSON.parse(stdout) as PushResult;
}

describe('lading-load push', function () {
  this.timeout(180_000);
  let f: Fixture;
  let all: string;
  let pinned: BundleEntry;
  let allRefs: Array<[string, BundleEntry]>;

  before(async () => {
    f = await makeFixture();
    const app = f.entries.find((e) => e.ref === 'docker.io/demo/app:1.0') as BundleEntry;
    pinned = app;
    const pinnedRef = `ghcr.io/demo/pinned@${app.digest}`;
    all = await f.bundle('all.tar', { alias: [[pinnedRef, app]] });
    allRefs = [...f.entries.map((e) => [e.ref, e] as [string, BundleEntry]), [pinnedRef, app]];
  });
  after(async () => {
    await f?.cleanup();
  });

  describe('into a TLS registry with basic auth, under a prefix', () => {
    let reg: RegistryServer;
    before(async () => {
      reg = await startRegistry({ mode: 'basic' });
    });
    after(async () => {
      await reg?.stop();
    });

    it('pushes every image and chart with identical digests; skopeo reads them back', async () => {
      const { args, env } = registryFlags(reg);
      const t0 = Date.now();
      const r = await runCli(
        ['push', all, '--key', f.pub, '--registry', `${reg.host}/airgap`, ...args, '--json'],
        {
          env,
        },
      );
      const ms = Date.now() - t0;
      assert.equal(r.code, 0, r.stderr + r.stdout);
      const res = parseJson(r.stdout);
      assert.equal(res.ok, true);
      assert.equal(res.verified, true);
      assert.equal(res.items.length, allRefs.length);
      assert.deepEqual(
        res.items.map((i) => i.status),
        res.items.map(() => 'pushed'),
      );
      // digest-only source: pushed by digest, untagged
      const pin = res.items.find((i) =>
        i.source.startsWith('ghcr.io/demo/pinned@'),
      ) as PushResult['items'][0];
      assert.equal(pin.target, `${reg.host}/airgap/demo/pinned@${pinned.digest}`);
      const chart = res.items.find((i) => i.kind === 'chart') as PushResult['items'][0];
      assert.equal(chart.target, `${reg.host}/airgap/charts/plain:0.1.0`);
      await assertDigests(reg, 'airgap', allRefs);
      // the index's children are there by digest
      const multi = f.images.find((i) => i.manifests) as NonNullable<Fixture['images'][0]>;
      for (const m of multi.manifests ?? []) {
        assert.equal(await skopeoDigest(`${reg.host}/airgap/demo/multi@${m.digest}`, reg), m.digest);
      }
      // the whole big image copies out again (every blob readable, digests checked by skopeo)
      await skopeo(
        ['copy', '--quiet', `docker://${reg.host}/airgap/demo/big:1.0`, `oci:${join(f.dir, 'back')}:big`],
        {
          registry: reg,
        },
      );
      assert.deepEqual(await storedRepositories(reg), [
        'airgap/charts/plain',
        'airgap/demo/app',
        'airgap/demo/base-a',
        'airgap/demo/base-b',
        'airgap/demo/big',
        'airgap/demo/legacy',
        'airgap/demo/multi',
        'airgap/demo/pinned',
      ]);
      // the base layer shared by base-a/base-b, and demo/pinned = demo/app: mounted, not sent twice
      assert.ok(res.summary.blobs.mounted >= 2, JSON.stringify(res.summary));
      assert.ok(
        res.summary.bytes > 4 * 1024 * 1024 && res.summary.bytes < 5 * 1024 * 1024,
        String(res.summary.bytes),
      );
      console.log(
        `      first push: ${ms} ms wall (CLI), ${res.summary.durationMs} ms in push (verify ${res.summary.verifyMs} ms)`,
      );
    });

    it('a re-push of the unchanged bundle skips everything (one HEAD per image)', async () => {
      const { args, env } = registryFlags(reg);
      const blobsBefore = await storedBlobCount(reg);
      const logged = (await registryRequests(reg)).length;
      const t0 = Date.now();
      const r = await runCli(
        ['push', all, '--key', f.pub, '--registry', `${reg.host}/airgap`, ...args, '--json'],
        {
          env,
        },
      );
      const ms = Date.now() - t0;
      assert.equal(r.code, 0, r.stderr);
      const res = parseJson(r.stdout);
      assert.ok(res.items.every((i) => i.status === 'skipped'));
      assert.equal(res.summary.bytes, 0);
      assert.equal(res.summary.blobs.pushed, 0);
      assert.equal(res.summary.manifests.pushed, 0);
      assert.equal(await storedBlobCount(reg), blobsBefore);
      // What the registry saw (its own log): one HEAD of a manifest per image or chart, nothing else
      // besides the /v2/ ping (a 401 challenge is not logged).
      const seen = (await registryRequests(reg, logged)).filter((q) => q.uri !== '/v2/');
      assert.deepEqual(
        seen.map((q) => `${q.method} ${q.status}`),
        res.items.map(() => 'HEAD 200'),
        JSON.stringify(seen.map((q) => `${q.method} ${q.uri}`)),
      );
      assert.ok(seen.every((q) => /^\/v2\/airgap\/.+\/manifests\/[^/]+$/.test(q.uri)));
      assert.equal(new Set(seen.map((q) => q.uri)).size, res.items.length, 'a different manifest for each');
      // The first push verified the whole bundle and left a stamp; this one rechecked the
      // signature and metadata of the unchanged file only.
      assert.equal(res.verification, 'stamp');
      const full = parseJson(
        (
          await runCli(
            [
              'push',
              all,
              '--key',
              f.pub,
              '--registry',
              `${reg.host}/airgap`,
              ...args,
              '--reverify',
              '--json',
            ],
            { env },
          )
        ).stdout,
      );
      assert.equal(full.verification, 'full');
      // The bundle's identity as GNU tar reads it: the SHA256SUMS that was verified and pushed.
      const sums = execFileSync('tar', ['-xOf', all, 'SHA256SUMS']);
      const identity = `sha256:${createHash('sha256').update(sums).digest('hex')}`;
      assert.equal(full.bundle.sumsDigest, identity);
      assert.equal(res.bundle.sumsDigest, identity);
      assert.ok(full.items.every((i) => i.status === 'skipped'));
      console.log(
        `      no-op re-push: ${ms} ms wall (CLI), ${res.summary.durationMs - res.summary.verifyMs} ms after verification`,
      );
    });

    it('a byte changed in place after a stamped push is exit 3: the stamp follows the file, not its name', async () => {
      const { args, env } = registryFlags(reg);
      const copyPath = join(f.dir, 'stamped.tar');
      await copyFile(all, copyPath);
      const first = await runCli(
        ['push', copyPath, '--key', f.pub, '--registry', `${reg.host}/airgap`, ...args, '--json'],
        { env },
      );
      assert.equal(first.code, 0, first.stderr);
      assert.equal(parseJson(first.stdout).verification, 'full');
      // Flip one byte of a layer's data in place: same path, inode and size.
      const big = f.entries.find((e) => e.ref.includes('demo/big')) ?? f.entries[0]!;
      const layer = await largestBlob(copyPath, big.digest);
      const fh = await open(copyPath, 'r+');
      try {
        const at = layer.offset + Math.floor(layer.size / 2);
        const b = Buffer.alloc(1);
        await fh.read(b, 0, 1, at);
        b[0] = (b[0] ?? 0) ^ 0xff;
        await fh.write(b, 0, 1, at);
      } finally {
        await fh.close();
      }
      const again = await runCli(
        ['push', copyPath, '--key', f.pub, '--registry', `${reg.host}/airgap`, ...args],
        {
          env,
        },
      );
      assert.equal(again.code, 3, again.stderr);
    });

    it('takes --username with --password-stdin and never prints the password', async () => {
      const r = await runCli(
        [
          'push',
          all,
          '--key',
          f.pub,
          '--registry',
          `${reg.host}/airgap`,
          '--ca-file',
          reg.caFile as string,
          '--username',
          reg.username as string,
          '--password-stdin',
          '--json',
        ],
        { stdin: `${reg.password}\n` },
      );
      assert.equal(r.code, 0, r.stderr);
      assert.ok(!r.stdout.includes(reg.password as string));
      assert.ok(!r.stderr.includes(reg.password as string));
      assert.ok(parseJson(r.stdout).items.every((i) => i.status === 'skipped'));
    });

    it('a wrong password is exit 4 with the registry refusal', async () => {
      const r = await runCli(
        [
          'push',
          all,
          '--key',
          f.pub,
          '--registry',
          `${reg.host}/other`,
          '--ca-file',
          reg.caFile as string,
          '--username',
          reg.username as string,
          '--password-stdin',
        ],
        { stdin: 'wrong-password' },
      );
      assert.equal(r.code, 4, r.stderr);
      assert.match(r.stderr, /username or password|401/);
      assert.ok(!r.stderr.includes('wrong-password'));
      assert.ok(!(await storedRepositories(reg)).some((x) => x.startsWith('other/')));
    });

    it('an untrusted registry certificate is exit 4 with a --ca-file hint', async () => {
      const { env } = registryFlags(reg);
      const r = await runCli(['push', all, '--key', f.pub, '--registry', `${reg.host}/other`], { env });
      assert.equal(r.code, 4, r.stderr);
      assert.match(r.stderr, /TLS|certificate/);
      assert.match(r.stderr, /--ca-file/);
    });

    it('--insecure skips certificate verification', async () => {
      const { env } = registryFlags(reg);
      const r = await runCli(
        ['push', all, '--key', f.pub, '--registry', `${reg.host}/airgap`, '--insecure', '--json'],
        {
          env,
        },
      );
      assert.equal(r.code, 0, r.stderr);
      assert.ok(parseJson(r.stdout).items.every((i) => i.status === 'skipped'));
    });
  });

  describe('refusals: nothing is written', () => {
    let reg: RegistryServer;
    beforeEach(async () => {
      reg = await startRegistry({ mode: 'http' });
    });
    afterEach(async () => {
      await reg?.stop();
    });
    const push = (bundle: string, extra: string[] = []) =>
      runCli(['push', bundle, '--registry', `${reg.host}/airgap`, '--plain-http', ...extra]);

    it('two sources on one path: exit 2 naming both, registry empty', async () => {
      const app = f.entries.find((e) => e.ref === 'docker.io/demo/app:1.0') as BundleEntry;
      const b = await f.bundle('collide.tar', { alias: [['quay.io/demo/app:1.1', app]] });
      const r = await push(b, ['--key', f.pub]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /docker\.io\/demo\/app/);
      assert.match(r.stderr, /quay\.io\/demo\/app/);
      assert.deepEqual(await storedRepositories(reg), []);
      assert.equal(await storedBlobCount(reg), 0);
    });

    it('a tampered bundle: exit 3, registry empty', async () => {
      const b = join(f.dir, 'bundles', 'tampered.tar');
      await copyFile(all, b);
      await flipByte(b, Math.floor(4 * 1024 * 1024 * 0.5)); // inside the big layer
      const r = await push(b, ['--key', f.pub]);
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /blobs\/sha256\//);
      assert.deepEqual(await storedRepositories(reg), []);
      assert.equal(await storedBlobCount(reg), 0);
    });

    it('a bundle signed by another key: exit 3, registry empty', async () => {
      const other = join(f.dir, 'other.pub');
      const { generateKeyPair } = await import('@lading/core');
      await writeFile(other, generateKeyPair({}).publicKeyPem);
      const r = await push(all, ['--key', other]);
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /signature/i);
      assert.deepEqual(await storedRepositories(reg), []);
    });

    it('no --key and no --skip-verify: exit 2 with a hint, registry empty', async () => {
      const r = await push(all);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /--key/);
      assert.match(r.stderr, /--skip-verify/);
      assert.deepEqual(await storedRepositories(reg), []);
    });

    it('--skip-verify on a tampered bundle warns loudly and never pushes the bad blob (exit 3)', async () => {
      const b = join(f.dir, 'bundles', 'tampered2.tar');
      await copyFile(all, b);
      await flipByte(b, Math.floor(4 * 1024 * 1024 * 0.5));
      const r = await push(b, ['--skip-verify']);
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /WARNING: --skip-verify/);
      await assert.rejects(
        skopeo(['inspect', '--raw', `docker://${reg.host}/airgap/demo/big:1.0`], { registry: reg }),
      );
    });

    it('a differential bundle whose base is not in the registry: exit 2 naming the base, registry empty', async () => {
      const big = f.entries.find((e) => e.ref.includes('demo/big')) as BundleEntry;
      const layer = big.blobs.find(
        (b) => b !== big.digest && (f.images.find((i) => i.digest === big.digest)?.blobs ?? []).includes(b),
      );
      const bigImage = f.images.find((i) => i.digest === big.digest);
      assert.ok(bigImage && layer);
      const diff = await f.bundle('diff-alone.tar', {
        entries: [big],
        omit: [bigImage.blobs[bigImage.blobs.length - 1] as string],
        since: { name: 'pushtest', version: '0.9.0' },
      });
      const r = await push(diff, ['--key', f.pub]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /pushtest 0\.9\.0/);
      assert.match(r.stderr, /first/);
      assert.deepEqual(await storedRepositories(reg), []);
    });

    it('a dry run verifies and plans but writes nothing', async () => {
      const r = await push(all, ['--key', f.pub, '--dry-run', '--json']);
      assert.equal(r.code, 0, r.stderr);
      const res = parseJson(r.stdout);
      assert.equal(res.dryRun, true);
      assert.ok(res.items.every((i) => i.status === 'planned'));
      assert.deepEqual(await storedRepositories(reg), []);
    });
  });

  describe('differential bundle with its base in the registry', () => {
    let reg: RegistryServer;
    before(async () => {
      reg = await startRegistry({ mode: 'http' });
    });
    after(async () => {
      await reg?.stop();
    });

    it('checks the omitted blobs up front and mounts them into new repositories', async () => {
      const big = f.entries.find((e) => e.ref.includes('demo/big')) as BundleEntry;
      const bigImage = f.images.find((i) => i.digest === big.digest);
      assert.ok(bigImage);
      // the big layer: the largest blob
      const layer = bigImage.blobs[bigImage.blobs.length - 1] as string;
      const base = await f.bundle('base.tar', { entries: [big], version: '0.9.0' });
      const diff = await f.bundle('diff.tar', {
        entries: [big],
        alias: [['docker.io/demo/big-copy:1.0', big]],
        omit: [layer],
        since: { name: 'pushtest', version: '0.9.0' },
      });
      const flags = ['--registry', `${reg.host}/site`, '--plain-http', '--key', f.pub, '--json'];
      const r1 = await runCli(['push', base, ...flags]);
      assert.equal(r1.code, 0, r1.stderr);
      const r2 = await runCli(['push', diff, ...flags]);
      assert.equal(r2.code, 0, r2.stderr + r2.stdout);
      const res = parseJson(r2.stdout);
      assert.deepEqual(
        res.items.map((i) => [i.source, i.status]),
        [
          ['registry.example.com:5000/demo/big:1.0', 'skipped'],
          ['docker.io/demo/big-copy:1.0', 'pushed'],
        ],
      );
      assert.ok(res.summary.blobs.mounted >= 1);
      assert.ok(res.summary.bytes < 64 * 1024, String(res.summary.bytes));
      assert.equal(await skopeoDigest(`${reg.host}/site/demo/big-copy:1.0`, reg), big.digest);
      await skopeo(
        ['copy', '--quiet', `docker://${reg.host}/site/demo/big-copy:1.0`, `oci:${join(f.dir, 'back2')}:b`],
        {
          registry: reg,
        },
      );
    });
  });

  describe('plain HTTP', () => {
    let reg: RegistryServer;
    before(async () => {
      reg = await startRegistry({ mode: 'http' });
    });
    after(async () => {
      await reg?.stop();
    });

    it('a loopback registry without TLS needs no flag (like Docker and crane)', async () => {
      const r = await runCli(['push', all, '--key', f.pub, '--registry', `${reg.host}/insec`, '--json']);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.ok(parseJson(r.stdout).items.every((i) => i.status === 'pushed'));
      await assertDigests(reg, 'insec', allRefs);
    });
  });

  describe('--continue-on-error', () => {
    let reg: RegistryServer;
    before(async () => {
      reg = await startRegistry({ mode: 'http' });
      // Make the registry fail for one repository: a file where its storage folder must go.
      const dir = join(reg.dataDir, 'docker/registry/v2/repositories/airgap/demo');
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, 'legacy'), 'not a folder');
    });
    after(async () => {
      await reg?.stop();
    });

    it('without it, the first failure stops the push with exit 4', async () => {
      const r = await runCli([
        'push',
        all,
        '--key',
        f.pub,
        '--registry',
        `${reg.host}/airgap`,
        '--plain-http',
      ]);
      assert.equal(r.code, 4, r.stderr);
      assert.match(r.stderr, /demo\/legacy/);
    });

    it('pushes everything else, lists the failure and exits 4', async () => {
      const r = await runCli([
        'push',
        all,
        '--key',
        f.pub,
        '--registry',
        `${reg.host}/airgap`,
        '--plain-http',
        '--continue-on-error',
        '--json',
      ]);
      assert.equal(r.code, 4, r.stderr);
      const res = parseJson(r.stdout);
      assert.equal(res.ok, false);
      const failed = res.items.filter((i) => i.status === 'failed');
      assert.deepEqual(
        failed.map((i) => i.source),
        ['quay.io/demo/legacy:2.0'],
      );
      assert.ok(failed[0]?.error?.message);
      assert.equal(res.summary.images.failed, 1);
      await assertDigests(
        reg,
        'airgap',
        allRefs.filter(([ref]) => !ref.includes('legacy')),
      );
    });
  });

  describe('token auth', () => {
    let reg: RegistryServer;
    before(async () => {
      reg = await startRegistry({ mode: 'token', readOnlyUser: true });
    });
    after(async () => {
      await reg?.stop();
    });

    it('a pull-only user is refused with exit 4 and the registry message; nothing written', async () => {
      const r = await runCli(
        ['push', all, '--key', f.pub, '--registry', `${reg.host}/ro`, '--ca-file', reg.caFile as string],
        {
          env: {
            LADING_REGISTRY_USERNAME: reg.readOnlyUsername as string,
            LADING_REGISTRY_PASSWORD: reg.readOnlyPassword as string,
          },
        },
      );
      assert.equal(r.code, 4, r.stderr);
      assert.match(r.stderr, /denied|401|403|unauthorized/i);
      assert.deepEqual(await storedRepositories(reg), []);
    });

    it('pushes with bearer tokens; skopeo reads every digest back', async () => {
      const { args, env } = registryFlags(reg);
      const r = await runCli(['push', all, '--key', f.pub, '--registry', reg.host, ...args, '--json'], {
        env,
      });
      assert.equal(r.code, 0, r.stderr);
      await assertDigests(reg, '', allRefs);
    });
  });
});
