import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { InvalidInputError } from '../../errors/index.ts';

/**
 * Credentials and keychains. A keychain answers "what credentials do I use for this registry
 * (and repository)?"; keychains compose, the first that knows wins. Sources: explicit
 * credentials, `~/.docker/config.json` (`auths` with base64 `auth` or `identitytoken`,
 * `credHelpers` and `credsStore` through `docker-credential-<name> get`), and the containers
 * `auth.json` (`REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json`).
 */
export interface Credential {
  username?: string;
  password?: string;
  /** OAuth2 refresh token (Docker `identitytoken`), exchanged at the token realm. */
  identityToken?: string;
  /** A bearer token to send as is (Docker `registrytoken`). */
  registryToken?: string;
}

export interface Keychain {
  /** Credentials for `host` (e.g. `127.0.0.1:5000`, `docker.io`), optionally for one repository. */
  get(host: string, repository?: string): Promise<Credential | undefined>;
}

export class CredentialsError extends InvalidInputError {
  override readonly code = 'CREDENTIALS_INVALID';
}

export function isEmptyCredential(c: Credential | undefined): boolean {
  return !c || (!c.username && !c.password && !c.identityToken && !c.registryToken);
}

const DOCKER_HUB_KEYS = [
  'https://index.docker.io/v1/',
  'index.docker.io',
  'docker.io',
  'registry-1.docker.io',
];

/** Whether a host is Docker Hub under any of its names. */
export function isDockerHub(host: string): boolean {
  return ['docker.io', 'index.docker.io', 'registry-1.docker.io'].includes(host.toLowerCase());
}

/**
 * Normalise a config key to `host[:port][/path]`: Docker writes `https://index.docker.io/v1/`
 * or `https://host:5000`, containers writes `host/namespace/repo`.
 */
export function normalizeAuthKey(key: string): string {
  let k = key.trim();
  k = k.replace(/^[a-z]+:\/\//i, '');
  k = k.replace(/\/+$/, '');
  // Docker's legacy `/v1` or `/v2` suffix on a bare host
  k = k.replace(/^([^/]+)\/v[12]$/, '$1');
  const slash = k.indexOf('/');
  const host = (slash < 0 ? k : k.slice(0, slash)).toLowerCase();
  const rest = slash < 0 ? '' : k.slice(slash);
  const h = isDockerHub(host) ? 'docker.io' : host;
  return h + rest;
}

/** The lookup keys for host (+ repository), most specific first (containers semantics). */
export function lookupKeys(host: string, repository?: string): string[] {
  const h = normalizeAuthKey(host);
  const keys: string[] = [];
  if (repository) {
    const parts = repository.split('/');
    for (let n = parts.length; n > 0; n--) keys.push(`${h}/${parts.slice(0, n).join('/')}`);
  }
  keys.push(h);
  return keys;
}

/** Explicit credentials: for one host, or for every host when `host` is omitted. */
export class StaticKeychain implements Keychain {
  private readonly entries: Map<string, Credential>;
  private readonly any: Credential | undefined;

  constructor(credentials: Credential | Record<string, Credential>, host?: string) {
    this.entries = new Map();
    if (isCredential(credentials)) {
      if (host) this.entries.set(normalizeAuthKey(host), credentials);
      else this.any = credentials;
    } else {
      for (const [k, v] of Object.entries(credentials)) this.entries.set(normalizeAuthKey(k), v);
    }
  }

  async get(host: string, repository?: string): Promise<Credential | undefined> {
    for (const k of lookupKeys(host, repository)) {
      const c = this.entries.get(k);
      if (c) return c;
    }
    return this.any;
  }
}

function isCredential(x: unknown): x is Credential {
  if (typeof x !== 'object' || x === null) return false;
  const keys = Object.keys(x);
  return (
    keys.length === 0 ||
    keys.every((k) => ['username', 'password', 'identityToken', 'registryToken'].includes(k))
  );
}

/** The first keychain that has credentials wins. */
export class MultiKeychain implements Keychain {
  readonly keychains: readonly Keychain[];
  constructor(keychains: readonly Keychain[]) {
    this.keychains = keychains;
  }
  async get(host: string, repository?: string): Promise<Credential | undefined> {
    for (const k of this.keychains) {
      const c = await k.get(host, repository);
      if (!isEmptyCredential(c)) return c;
    }
    return undefined;
  }
}

/** No credentials ever (anonymous access). */
export const anonymousKeychain: Keychain = { get: async () => undefined };

interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
  registrytoken?: string;
}

interface AuthConfigFile {
  auths?: Record<string, AuthEntry>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

async function readJsonFile(file: string): Promise<AuthConfigFile | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR')
      return undefined;
    throw err;
  }
  try {
    return JSON.parse(text) as AuthConfigFile;
  } catch (err) {
    throw new CredentialsError(`${file}: not valid JSON (${(err as Error).message})`, {
      hint: 'fix or remove the file; it holds registry credentials',
    });
  }
}

function decodeEntry(entry: AuthEntry, file: string, key: string): Credential | undefined {
  const out: Credential = {};
  if (entry.auth) {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    if (i < 0) {
      throw new CredentialsError(`${file}: the "auth" of ${key} is not base64 of "user:password"`, {
        hint: 'log in again (docker login / podman login) to rewrite it',
      });
    }
    out.username = decoded.slice(0, i);
    out.password = decoded.slice(i + 1);
  }
  if (entry.username) out.username = entry.username;
  if (entry.password) out.password = entry.password;
  // An identity token replaces the password (the username is then "<token>" or empty).
  if (entry.identitytoken) return { identityToken: entry.identitytoken };
  if (entry.registrytoken) out.registryToken = entry.registrytoken;
  return isEmptyCredential(out) ? undefined : out;
}

/** Find the `auths` entry for host/repository in a file's map, tolerant of key spelling. */
function findAuth(
  auths: Record<string, AuthEntry> | undefined,
  host: string,
  repository: string | undefined,
  file: string,
): Credential | undefined {
  if (!auths) return undefined;
  const byKey = new Map<string, [string, AuthEntry]>();
  for (const [k, v] of Object.entries(auths)) {
    const n = normalizeAuthKey(k);
    if (!byKey.has(n)) byKey.set(n, [k, v]);
  }
  for (const key of lookupKeys(host, repository)) {
    const hit = byKey.get(key);
    if (hit) {
      const c = decodeEntry(hit[1], file, hit[0]);
      if (c) return c;
    }
  }
  return undefined;
}

export interface CredentialHelperOptions {
  /** Milliseconds before a helper is killed (default 30 000). */
  timeoutMs?: number;
  /** Environment for the helper (default process.env). */
  env?: NodeJS.ProcessEnv;
}

/** Run `docker-credential-<helper> get` with the server URL on stdin. */
export async function runCredentialHelper(
  helper: string,
  serverUrl: string,
  opts: CredentialHelperOptions = {},
): Promise<Credential | undefined> {
  if (!/^[A-Za-z0-9._-]+$/.test(helper)) {
    throw new CredentialsError(`invalid credential helper name "${helper}"`, {
      hint: 'credHelpers/credsStore name a program docker-credential-<name> on PATH',
    });
  }
  const program = `docker-credential-${helper}`;
  const { stdout, code, stderr } = await new Promise<{
    stdout: string;
    stderr: string;
    code: number | string;
  }>((resolve) => {
    const child = execFile(
      program,
      ['get'],
      { timeout: opts.timeoutMs ?? 30_000, env: opts.env ?? process.env, maxBuffer: 1024 * 1024 },
      (err, out, errOut) => {
        const c = err ? ((err as NodeJS.ErrnoException).code ?? 1) : 0;
        resolve({ stdout: String(out), stderr: String(errOut), code: c as number | string });
      },
    );
    child.stdin?.on('error', () => {});
    child.stdin?.end(serverUrl);
  });
  if (code === 'ENOENT') {
    throw new CredentialsError(`credential helper ${program} is not on PATH`, {
      hint: `install ${program} or remove it from credHelpers/credsStore in the Docker config`,
    });
  }
  if (code !== 0) {
    const text = `${stdout}\n${stderr}`;
    if (/credentials not found/i.test(text)) return undefined;
    throw new CredentialsError(
      `credential helper ${program} failed for ${serverUrl}: ${text.trim() || code}`,
      {
        hint: `run "echo ${serverUrl} | ${program} get" to see what it says`,
      },
    );
  }
  let json: { Username?: string; Secret?: string };
  try {
    json = JSON.parse(stdout) as { Username?: string; Secret?: string };
  } catch {
    throw new CredentialsError(`credential helper ${program} printed no JSON for ${serverUrl}`, {
      hint: `run "echo ${serverUrl} | ${program} get" to see what it says`,
    });
  }
  if (!json.Secret && !json.Username) return undefined;
  // Docker convention: username "<token>" means the secret is an identity (refresh) token.
  if (json.Username === '<token>') return { identityToken: json.Secret ?? '' };
  return { username: json.Username ?? '', password: json.Secret ?? '' };
}

function helperServerUrls(host: string): string[] {
  return isDockerHub(host) ? [DOCKER_HUB_KEYS[0]!] : [host, `https://${host}`];
}

export interface DockerConfigKeychainOptions extends CredentialHelperOptions {
  /** Directory holding config.json (default `$DOCKER_CONFIG` or `~/.docker`). */
  configDir?: string;
}

/** `config.json` of the Docker CLI: `credHelpers` (per host), then `auths`, then `credsStore`. */
export class DockerConfigKeychain implements Keychain {
  private readonly opts: DockerConfigKeychainOptions;
  constructor(opts: DockerConfigKeychainOptions = {}) {
    this.opts = opts;
  }

  get file(): string {
    const env = this.opts.env ?? process.env;
    const dir = this.opts.configDir ?? env.DOCKER_CONFIG ?? join(homedir(), '.docker');
    return join(dir, 'config.json');
  }

  async get(host: string, repository?: string): Promise<Credential | undefined> {
    const file = this.file;
    const cfg = await readJsonFile(file);
    if (!cfg) return undefined;
    const helpers = cfg.credHelpers ?? {};
    const h = normalizeAuthKey(host);
    for (const [key, helper] of Object.entries(helpers)) {
      if (normalizeAuthKey(key) === h) {
        // Docker passes the config key itself (Docker Hub: https://index.docker.io/v1/).
        return runCredentialHelper(helper, isDockerHub(host) ? DOCKER_HUB_KEYS[0]! : key, this.opts);
      }
    }
    const fromAuths = findAuth(cfg.auths, host, repository, file);
    if (fromAuths) return fromAuths;
    if (cfg.credsStore) {
      for (const url of helperServerUrls(host)) {
        const c = await runCredentialHelper(cfg.credsStore, url, this.opts);
        if (c) return c;
      }
    }
    return undefined;
  }
}

export interface ContainersAuthKeychainOptions {
  /** Explicit auth.json path; default `REGISTRY_AUTH_FILE`, else `$XDG_RUNTIME_DIR/containers/auth.json`. */
  authFile?: string;
  env?: NodeJS.ProcessEnv;
}

/** containers-auth.json(5): `auths` keyed by host or host/namespace/repo, plus credHelpers. */
export class ContainersAuthKeychain implements Keychain {
  private readonly opts: ContainersAuthKeychainOptions;
  constructor(opts: ContainersAuthKeychainOptions = {}) {
    this.opts = opts;
  }

  get files(): string[] {
    if (this.opts.authFile) return [this.opts.authFile];
    const env = this.opts.env ?? process.env;
    if (env.REGISTRY_AUTH_FILE) return [env.REGISTRY_AUTH_FILE];
    const out: string[] = [];
    if (env.XDG_RUNTIME_DIR) out.push(join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json'));
    const cfgHome = env.XDG_CONFIG_HOME ?? join(homedir(), '.config');
    out.push(join(cfgHome, 'containers', 'auth.json'));
    return out;
  }

  async get(host: string, repository?: string): Promise<Credential | undefined> {
    for (const file of this.files) {
      const cfg = await readJsonFile(file);
      if (!cfg) continue;
      const c = findAuth(cfg.auths, host, repository, file);
      if (c) return c;
      const h = normalizeAuthKey(host);
      for (const [key, helper] of Object.entries(cfg.credHelpers ?? {})) {
        if (normalizeAuthKey(key) === h) {
          const hc = await runCredentialHelper(helper, host, { env: this.opts.env ?? process.env });
          if (hc) return hc;
        }
      }
    }
    return undefined;
  }
}

export interface DefaultKeychainOptions {
  /** Explicit credentials (e.g. from --username/--password-stdin); they win for `host` (or everywhere). */
  credentials?: Credential;
  host?: string;
  dockerConfigDir?: string;
  authFile?: string;
  env?: NodeJS.ProcessEnv;
}

/**
 * Explicit credentials, then containers auth.json (REGISTRY_AUTH_FILE / XDG_RUNTIME_DIR), then
 * the Docker config (auths, credHelpers, credsStore).
 */
export function defaultKeychain(opts: DefaultKeychainOptions = {}): Keychain {
  const chain: Keychain[] = [];
  if (opts.credentials && !isEmptyCredential(opts.credentials))
    chain.push(new StaticKeychain(opts.credentials, opts.host));
  const env = opts.env ?? process.env;
  chain.push(new ContainersAuthKeychain({ ...(opts.authFile ? { authFile: opts.authFile } : {}), env }));
  chain.push(
    new DockerConfigKeychain({ ...(opts.dockerConfigDir ? { configDir: opts.dockerConfigDir } : {}), env }),
  );
  return new MultiKeychain(chain);
}
