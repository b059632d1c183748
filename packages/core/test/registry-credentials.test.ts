import assert from 'node:assert/strict';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type RegistryServer, startRegistry, tmpDir } from '@lading/testkit';
import { bytesStream } from '../src/content/index.ts';
import { digestOf } from '../src/digest/index.ts';
import { MediaType } from '../src/model/index.ts';
import {
  AuthError,
  ContainersAuthKeychain,
  CredentialsError,
  DockerConfigKeychain,
  defaultKeychain,
  MultiKeychain,
  mergeScopes,
  normalizeAuthKey,
  parseChallenges,
  Registry,
  StaticKeychain,
} from '../src/registry/index.ts';

const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('registry credentials and auth parsing', function () {
  this.timeout(60_000);
  let dir: { path: string; cleanup(): Promise<void> };
  let binDir: string;
  let helperLog: string;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    dir = await tmpDir('lading-creds-');
    binDir = join(dir.path, 'bin');
    helperLog = join(dir.path, 'helper.log');
    await mkdir(binDir);
    // A credential helper speaking the docker-credential protocol: server URL on stdin, JSON out.
    const script = `#!/bin/sh
read url
echo "$1 $url" >> "${helperLog}"
case "$url" in
  helper.example:5000) echo '{"ServerURL":"helper.example:5000","Username":"hu","Secret":"hs"}' ;;
  https://index.docker.io/v1/) echo '{"ServerURL":"https://index.docker.io/v1/","Username":"<token>","Secret":"refresh-tok"}' ;;
  store.example|https://store.example) echo '{"ServerURL":"store.example","Username":"su","Secret":"ss"}' ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
`;
    await writeFile(join(binDir, 'docker-credential-test'), script);
    await chmod(join(binDir, 'docker-credential-test'), 0o755);
    env = { PATH: `${binDir}:${process.env.PATH}`, HOME: dir.path };
  });
  after(async () => {
    await dir?.cleanup();
  });

  it('parses WWW-Authenticate challenges (quoted, escaped, several schemes)', () => {
    const c = parseChallenges(
      'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push", Basic realm="say \\"hi\\""',
    );
    assert.deepEqual(c, [
      {
        scheme: 'bearer',
        params: {
          realm: 'https://auth.example/token',
          service: 'registry.example',
          scope: 'repository:a/b:pull,push',
        },
      },
      { scheme: 'basic', params: { realm: 'say "hi"' } },
    ]);
    assert.deepEqual(parseChallenges('Bearer realm=https://x/t,error=insufficient_scope')[0]?.params, {
      realm: 'https://x/t',
      error: 'insufficient_scope',
    });
    assert.deepEqual(parseChallenges(undefined), []);
  });

  it('merges token scopes per resource', () => {
    assert.deepEqual(mergeScopes(['repository:a:pull'], 'repository:a:push repository:b:pull'), [
      'repository:a:pull,push',
      'repository:b:pull',
    ]);
  });

  it('normalises config keys (docker.io ↔ https://index.docker.io/v1/)', () => {
    assert.equal(normalizeAuthKey('https://index.docker.io/v1/'), 'docker.io');
    assert.equal(normalizeAuthKey('registry-1.docker.io'), 'docker.io');
    assert.equal(normalizeAuthKey('https://Reg.Example:5000'), 'reg.example:5000');
    assert.equal(normalizeAuthKey('http://reg.example/v2/'), 'reg.example');
    assert.equal(normalizeAuthKey('quay.io/org/repo'), 'quay.io/org/repo');
  });

  it('reads ~/.docker/config.json auths (base64 auth, identitytoken), credHelpers and credsStore', async () => {
    const cfgDir = join(dir.path, 'docker');
    await mkdir(cfgDir, { recursive: true });
    await writeFile(
      join(cfgDir, 'config.json'),
      JSON.stringify({
        auths: {
          'https://index.docker.io/v1/': { auth: b64('hubuser:hubpass') },
          'https://plain.example:5000': { auth: b64('pu:p:w:with:colons') },
          'idtok.example': { auth: b64('<token>:'), identitytoken: 'idt' },
        },
        credHelpers: { 'helper.example:5000': 'test' },
        credsStore: 'test',
      }),
    );
    const kc = new DockerConfigKeychain({ env: { ...env, DOCKER_CONFIG: cfgDir } });
    assert.deepEqual(await kc.get('docker.io'), { username: 'hubuser', password: 'hubpass' });
    assert.deepEqual(await kc.get('index.docker.io'), { username: 'hubuser', password: 'hubpass' });
    assert.deepEqual(await kc.get('plain.example:5000'), { username: 'pu', password: 'p:w:with:colons' });
    assert.deepEqual(await kc.get('idtok.example'), { identityToken: 'idt' });
    assert.deepEqual(await kc.get('helper.example:5000'), { username: 'hu', password: 'hs' });
    assert.deepEqual(await kc.get('store.example'), { username: 'su', password: 'ss' }, 'credsStore');
    assert.equal(await kc.get('unknown.example'), undefined, '"credentials not found" is no credentials');
    const log = await readFile(helperLog, 'utf8');
    assert.match(log, /^get helper\.example:5000$/m);
    assert.match(log, /^get store\.example$/m);
  });

  it('maps Docker Hub to https://index.docker.io/v1/ for helpers; <token> means an identity token', async () => {
    const cfgDir = join(dir.path, 'docker-hub');
    await mkdir(cfgDir, { recursive: true });
    await writeFile(join(cfgDir, 'config.json'), JSON.stringify({ credHelpers: { 'docker.io': 'test' } }));
    const kc = new DockerConfigKeychain({ env: { ...env, DOCKER_CONFIG: cfgDir } });
    assert.deepEqual(await kc.get('docker.io'), { identityToken: 'refresh-tok' });
    assert.match(await readFile(helperLog, 'utf8'), /^get https:\/\/index\.docker\.io\/v1\/$/m);
  });

  it('reports a broken config or a missing helper as a typed error', async () => {
    const cfgDir = join(dir.path, 'docker-bad');
    await mkdir(cfgDir, { recursive: true });
    await writeFile(join(cfgDir, 'config.json'), '{ not json');
    await assert.rejects(
      new DockerConfigKeychain({ env: { ...env, DOCKER_CONFIG: cfgDir } }).get('x'),
      CredentialsError,
    );
    await writeFile(join(cfgDir, 'config.json'), JSON.stringify({ credHelpers: { x: 'absent' } }));
    await assert.rejects(
      new DockerConfigKeychain({ env: { ...env, DOCKER_CONFIG: cfgDir } }).get('x'),
      (err: unknown) => {
        assert.ok(err instanceof CredentialsError);
        assert.match(err.message, /docker-credential-absent/);
        return true;
      },
    );
  });

  it('reads containers auth.json from REGISTRY_AUTH_FILE or XDG_RUNTIME_DIR, most specific key first', async () => {
    const file = join(dir.path, 'auth.json');
    await writeFile(
      file,
      JSON.stringify({
        auths: {
          'reg.example': { auth: b64('host:wide') },
          'reg.example/team': { auth: b64('team:scoped') },
          'docker.io': { auth: b64('hub:x') },
        },
      }),
    );
    const kc = new ContainersAuthKeychain({ env: { ...env, REGISTRY_AUTH_FILE: file } });
    assert.deepEqual(await kc.get('reg.example', 'team/app'), { username: 'team', password: 'scoped' });
    assert.deepEqual(await kc.get('reg.example', 'other/app'), { username: 'host', password: 'wide' });
    assert.deepEqual(await kc.get('index.docker.io', 'library/nginx'), { username: 'hub', password: 'x' });
    const xdg = join(dir.path, 'xdg');
    await mkdir(join(xdg, 'containers'), { recursive: true });
    await writeFile(
      join(xdg, 'containers', 'auth.json'),
      JSON.stringify({ auths: { 'x.example': { auth: b64('a:b') } } }),
    );
    assert.deepEqual(
      await new ContainersAuthKeychain({ env: { ...env, XDG_RUNTIME_DIR: xdg } }).get('x.example'),
      {
        username: 'a',
        password: 'b',
      },
    );
  });

  it('composes keychains: explicit credentials win, then the first source that knows', async () => {
    const file = join(dir.path, 'auth2.json');
    await writeFile(file, JSON.stringify({ auths: { 'a.example': { auth: b64('fromfile:1') } } }));
    const kc = new MultiKeychain([
      new StaticKeychain({ username: 'explicit', password: '2' }, 'b.example'),
      new ContainersAuthKeychain({ authFile: file }),
    ]);
    assert.deepEqual(await kc.get('a.example'), { username: 'fromfile', password: '1' });
    assert.deepEqual(await kc.get('b.example'), { username: 'explicit', password: '2' });
    assert.equal(await kc.get('c.example'), undefined);
    const d = defaultKeychain({
      credentials: { username: 'cli', password: 'pw' },
      host: 'a.example',
      env: { ...env, REGISTRY_AUTH_FILE: file },
    });
    assert.deepEqual(await d.get('a.example'), { username: 'cli', password: 'pw' });
  });

  for (const mode of ['basic', 'token'] as const) {
    describe(`against Distribution (${mode})`, () => {
      let reg: RegistryServer;
      before(async () => {
        reg = await startRegistry({ mode });
      });
      after(async () => {
        await reg?.stop();
      });

      async function pushWith(keychainEnv: NodeJS.ProcessEnv): Promise<void> {
        const r = new Registry(reg.host, {
          caFile: reg.caFile!,
          keychain: defaultKeychain({ env: keychainEnv }),
          retry: { maxAttempts: 1 },
        });
        try {
          const data = Buffer.from(`creds ${mode} ${Math.random()}`);
          const d = { mediaType: MediaType.ociLayer, digest: digestOf(data), size: data.length };
          const repo = r.repository('creds/app');
          await repo.push(d, bytesStream(data));
          assert.equal(await repo.exists(d), true);
        } finally {
          await r.close();
        }
      }

      it('uses DOCKER_CONFIG auths', async () => {
        const cfgDir = join(dir.path, `dc-${mode}`);
        await mkdir(cfgDir, { recursive: true });
        await writeFile(
          join(cfgDir, 'config.json'),
          JSON.stringify({
            auths: { [`https://${reg.host}`]: { auth: b64(`${reg.username}:${reg.password}`) } },
          }),
        );
        await pushWith({ ...env, DOCKER_CONFIG: cfgDir });
      });

      it('uses a credential helper from credHelpers', async () => {
        const helper = join(binDir, `docker-credential-reg${mode}`);
        await writeFile(
          helper,
          `#!/bin/sh\nread url\n[ "$url" = "${reg.host}" ] || { echo "credentials not found"; exit 1; }\necho '{"Username":"${reg.username}","Secret":"${reg.password}"}'\n`,
        );
        await chmod(helper, 0o755);
        const cfgDir = join(dir.path, `dh-${mode}`);
        await mkdir(cfgDir, { recursive: true });
        await writeFile(
          join(cfgDir, 'config.json'),
          JSON.stringify({ credHelpers: { [reg.host]: `reg${mode}` } }),
        );
        await pushWith({ ...env, DOCKER_CONFIG: cfgDir });
      });

      it('uses REGISTRY_AUTH_FILE, and a wrong password there is an AuthError', async () => {
        const file = join(dir.path, `auth-${mode}.json`);
        await writeFile(
          file,
          JSON.stringify({ auths: { [reg.host]: { auth: b64(`${reg.username}:${reg.password}`) } } }),
        );
        await pushWith({ ...env, REGISTRY_AUTH_FILE: file, DOCKER_CONFIG: join(dir.path, 'none') });
        await writeFile(
          file,
          JSON.stringify({ auths: { [reg.host]: { auth: b64(`${reg.username}:nope`) } } }),
        );
        await assert.rejects(
          pushWith({ ...env, REGISTRY_AUTH_FILE: file, DOCKER_CONFIG: join(dir.path, 'none') }),
          AuthError,
        );
      });
    });
  }
});
