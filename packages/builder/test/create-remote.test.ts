import assert from 'node:assert/strict';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  AuthError,
  DockerConfigKeychain,
  ExitCode,
  type LadingError,
  openBundle,
  TlsError,
  VerificationError,
} from '@lading/core';
import { startChartRepo } from '@lading/testkit/chart-repo';
import { type CreateOptions, createBundle } from '../src/lib/create.ts';
import { type Fixture, shopSpec, startFixture } from './helpers.ts';

async function dockerConfig(
  dir: string,
  host: string,
  user: string,
  pass: string,
): Promise<DockerConfigKeychain> {
  const auth = Buffer.from(`${user}:${pass}`).toString('base64');
  await writeFile(join(dir, 'config.json'), JSON.stringify({ auths: { [host]: { auth } } }));
  return new DockerConfigKeychain({ configDir: dir, env: {} });
}

function expectError(kind: new (...a: never[]) => LadingError, exit: number, ...patterns: RegExp[]) {
  return (err: unknown) => {
    assert.ok(err instanceof kind, `expected ${kind.name}, got ${(err as Error)?.stack}`);
    assert.equal(err.exitCode, exit);
    for (const p of patterns) assert.match(`${err.message}\n${err.hint ?? ''}`, p);
    return true;
  };
}

for (const mode of ['basic', 'token'] as const) {
  describe(`lading-build create against a TLS registry with ${mode} auth and a TLS chart repository`, function () {
    this.timeout(180_000);
    let fx: Fixture;
    let tlsRepo: Awaited<ReturnType<typeof startChartRepo>>;
    let spec: string;
    const base = (extra: Partial<CreateOptions>): CreateOptions => ({
      spec,
      output: join(fx.dir, 'out.tar'),
      key: fx.key,
      cache: join(fx.dir, 'cache'),
      ...extra,
    });

    before(async () => {
      fx = await startFixture({ mode });
      tlsRepo = await startChartRepo({ charts: [fx.chartDir], tls: true });
      spec = join(fx.dir, 'tls.yaml');
      await writeFile(spec, shopSpec(fx.registry.host, tlsRepo.url));
    });
    after(async () => {
      await tlsRepo?.stop();
      await fx?.stop();
    });

    it('an untrusted registry certificate: exit 4 naming the registry, hint --ca-file', async () => {
      const keychain = await dockerConfig(
        fx.dir,
        fx.registry.host,
        fx.registry.username!,
        fx.registry.password!,
      );
      await assert.rejects(
        createBundle(base({ keychain, caFiles: [tlsRepo.caFile!] })),
        expectError(
          TlsError,
          ExitCode.remote,
          new RegExp(fx.registry.host.replace(/\./g, '\\.')),
          /ca-file/i,
        ),
      );
      await assert.rejects(stat(join(fx.dir, 'out.tar')));
    });

    it('wrong credentials: exit 4 naming the registry', async () => {
      const keychain = await dockerConfig(fx.dir, fx.registry.host, fx.registry.username!, 'wrong-password');
      await assert.rejects(
        createBundle(base({ keychain, caFiles: [fx.registry.caFile!, tlsRepo.caFile!] })),
        expectError(AuthError, ExitCode.remote, new RegExp(fx.registry.host.replace(/\./g, '\\.'))),
      );
      await assert.rejects(stat(join(fx.dir, 'out.tar')));
    });

    it('with both CAs (--ca-file twice) and credentials from the Docker config: a complete bundle', async () => {
      const keychain = await dockerConfig(
        fx.dir,
        fx.registry.host,
        fx.registry.username!,
        fx.registry.password!,
      );
      const s = await createBundle(base({ keychain, caFiles: [fx.registry.caFile!, tlsRepo.caFile!] }));
      assert.equal(s.images, 5);
      const b = await openBundle(s.path);
      try {
        for (const n of ['app', 'legacy', 'base-a', 'base-b']) {
          const img = b.ladingJson.images.find((i) => i.ref === fx.ref(`demo/${n}`))!;
          assert.equal(img.digest, fx.image(`demo/${n}`).digest);
        }
        assert.equal(b.ladingJson.charts[0]!.source, tlsRepo.url);
      } finally {
        await b.close();
      }
    });

    if (mode === 'basic') {
      it('a chart archive that does not match the index digest: exit 3, nothing written', async () => {
        const served = tlsRepo.charts[0]!;
        const original = await readFile(served.file);
        const tampered = Buffer.from(original);
        const at = tampered.length - 10;
        tampered.writeUInt8(tampered.readUInt8(at) ^ 0xff, at);
        await writeFile(served.file, tampered);
        try {
          const keychain = await dockerConfig(
            fx.dir,
            fx.registry.host,
            fx.registry.username!,
            fx.registry.password!,
          );
          await assert.rejects(
            createBundle(
              base({
                keychain,
                caFiles: [fx.registry.caFile!, tlsRepo.caFile!],
                cache: join(fx.dir, 'cache-t'),
                output: join(fx.dir, 't.tar'),
              }),
            ),
            expectError(VerificationError, ExitCode.verification),
          );
          await assert.rejects(stat(join(fx.dir, 't.tar')));
        } finally {
          await writeFile(served.file, original);
        }
      });

      it('a registry blob whose bytes do not match its digest: exit 3, nothing written', async () => {
        // corrupt demo/app's layer in the registry's storage (same size, different bytes)
        const app = fx.image('demo/app');
        const manifest = JSON.parse(
          await readFile(join(fx.layout, 'blobs/sha256', app.digest.slice(7)), 'utf8'),
        ) as { layers: Array<{ digest: string }> };
        const layer = manifest.layers[0]!.digest;
        const root = join(fx.registry.dataDir, 'docker/registry/v2/blobs/sha256');
        const f = join(root, layer.slice(7, 9), layer.slice(7), 'data');
        const bytes = await readFile(f);
        const mid = Math.floor(bytes.length / 2);
        bytes.writeUInt8(bytes.readUInt8(mid) ^ 0xff, mid);
        await writeFile(f, bytes);
        const spec2 = join(fx.dir, 'corrupt.yaml');
        await writeFile(
          spec2,
          `apiVersion: lading/v1\nname: c\nversion: "1"\nimages:\n  - ${fx.ref('demo/app')}\n`,
        );
        const keychain = await dockerConfig(
          fx.dir,
          fx.registry.host,
          fx.registry.username!,
          fx.registry.password!,
        );
        await assert.rejects(
          createBundle(
            base({
              spec: spec2,
              keychain,
              caFiles: [fx.registry.caFile!],
              cache: join(fx.dir, 'cache-c'),
              output: join(fx.dir, 'c.tar'),
            }),
          ),
          expectError(VerificationError, ExitCode.verification),
        );
        assert.deepEqual(
          (await readdir(fx.dir)).filter((n) => n.includes('c.tar')),
          [],
        );
      });
    }
  });
}
