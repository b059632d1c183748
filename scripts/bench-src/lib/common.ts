/**
 * Shared by scripts/bench and scripts/reliability: paths, the Lading CLIs, skopeo, small helpers.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
/** Where the built CLIs run from: the wrappers' snapshot of packages/ (see scripts/bench), else the tree. */
// biome-ignore lint/suspicious/noUndeclaredEnvVars: set by the bash wrapper, not a build input
const CLI_ROOT = process.env.LADING_CLI_ROOT ?? ROOT;
export const BUILD_BIN = join(CLI_ROOT, 'packages/builder/bin/run.js');
export const LOAD_BIN = join(CLI_ROOT, 'packages/loader/bin/run.js');
/** @lading/core as built (dist/), from the same snapshot: what the guards experiment imports. */
export const CORE_JS = join(CLI_ROOT, 'packages/core/dist/index.js');
export const NODE = process.execPath;
export const SKOPEO = '/usr/bin/skopeo';
export const SOURCE_DATE_EPOCH = '1735689600';

/** The work folder the bash wrapper made (removed by its trap), or a fallback under the OS temp dir. */
export function workDir(): string {
  // biome-ignore lint/suspicious/noUndeclaredEnvVars: set by the bash wrapper, not a build input
  const w = process.env.LADING_WORK_DIR;
  if (!w)
    throw new Error('LADING_WORK_DIR is not set: run this through scripts/bench or scripts/reliability');
  return w;
}

let counter = 0;
/** A fresh folder under the work folder. */
export async function fresh(prefix: string): Promise<string> {
  const p = join(workDir(), `${prefix}-${++counter}`);
  await mkdir(p, { recursive: true });
  return p;
}

/** An environment for a Lading process with its own HOME, cache and TMPDIR (so its disk use can be measured). */
export async function ladingEnv(extra: Record<string, string> = {}): Promise<{
  env: NodeJS.ProcessEnv;
  home: string;
  tmp: string;
}> {
  const home = await fresh('home');
  const tmp = await fresh('proc-tmp');
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: home,
    XDG_CACHE_HOME: join(home, '.cache'),
    XDG_CONFIG_HOME: join(home, '.config'),
    XDG_RUNTIME_DIR: join(home, '.run'),
    REGISTRY_AUTH_FILE: join(home, 'auth.json'),
    DOCKER_CONFIG: join(home, '.docker'),
    TMPDIR: tmp,
    SOURCE_DATE_EPOCH,
    NO_COLOR: '1',
    LANG: 'C.UTF-8',
    ...extra,
  };
  // Never reach anything but loopback.
  for (const k of ['http_proxy', 'https_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'all_proxy', 'ALL_PROXY'])
    delete env[k];
  env.NO_PROXY = '127.0.0.1,localhost';
  return { env, home, tmp };
}

export function specYaml(name: string, version: string, refs: string[]): string {
  return [
    'apiVersion: lading/v1',
    `name: ${name}`,
    `version: ${version}`,
    'images:',
    ...refs.map((r) => `  - ${r}`),
    '',
  ].join('\n');
}

export async function writeJson(file: string, value: unknown): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, JSON.stringify(value, null, 2) + '\n');
}

export async function readJson<T>(file: string): Promise<T> {
  return JSON.parse(await readFile(file, 'utf8')) as T;
}

function sh(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch {
    return '';
  }
}

export interface Machine {
  cpu: string;
  nproc: number;
  cpuFlags: string[];
  memTotalGiB: number;
  memAvailableGiB: number;
  free: string;
  kernel: string;
  os: string;
  fs: string;
  /** /proc/loadavg when the run started: other work on the machine skews the figures. */
  loadavg: string;
  versions: Record<string, string>;
}

export async function machine(at: string): Promise<Machine> {
  const cpuinfo = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  const meminfo = await readFile('/proc/meminfo', 'utf8').catch(() => '');
  const flags = /^flags\s*:\s*(.*)$/m.exec(cpuinfo)?.[1]?.split(/\s+/) ?? [];
  const memAvail = Number(/MemAvailable:\s+(\d+)/.exec(meminfo)?.[1] ?? 0) * 1024;
  const osRelease = await readFile('/etc/os-release', 'utf8').catch(() => '');
  return {
    cpu: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? cpus()[0]?.model ?? 'unknown',
    nproc: Number(sh('nproc', [])) || cpus().length,
    cpuFlags: ['sha_ni', 'aes', 'avx2', 'avx512f'].filter((f) => flags.includes(f)),
    memTotalGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    memAvailableGiB: Math.round((memAvail / 2 ** 30) * 10) / 10,
    free: sh('free', ['-m']),
    kernel: sh('uname', ['-r']),
    os: /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(osRelease)?.[1] ?? 'unknown',
    fs: sh('df', ['-hT', at]).split('\n').pop() ?? '',
    loadavg: (await readFile('/proc/loadavg', 'utf8').catch(() => '')).trim(),
    versions: {
      node: process.version,
      skopeo: sh(SKOPEO, ['--version']),
      openssl: sh('openssl', ['version']),
      curl: sh('curl', ['--version']).split('\n')[0] ?? '',
      tar: sh('tar', ['--version']).split('\n')[0] ?? '',
      registry: sh('/usr/bin/docker-registry', ['--version']),
    },
  };
}

export function parseArgs(
  argv: string[],
  spec: Record<string, 'string' | 'boolean'>,
): Record<string, string | boolean> {
  const out: Record<string, string | boolean> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    const [k, inline] = a.slice(2).split('=', 2) as [string, string | undefined];
    const kind = spec[k];
    if (!kind)
      throw new Error(
        `unknown flag --${k} (known: ${Object.keys(spec)
          .map((s) => `--${s}`)
          .join(' ')})`,
      );
    if (kind === 'boolean') out[k] = true;
    else {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`--${k} needs a value`);
      out[k] = v;
    }
  }
  return out;
}

export function fmtBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}

export function fmtSec(ms: number): string {
  return ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${(ms / 1000).toFixed(2)} s`;
}

export const log = (line: string): void => {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);
};

/** The marker after which a generated document holds hand-written notes that a rerun keeps. */
export const NOTES_MARKER = '<!-- notes: written by hand, kept when the script regenerates this file -->';

/** The hand-written notes of an existing generated document (from the marker on), or the bare marker. */
export async function keptNotes(file: string): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '');
  const at = text.indexOf(NOTES_MARKER);
  return `\n${at >= 0 ? text.slice(at) : `${NOTES_MARKER}\n`}`;
}

/**
 * docs/NAME.json and docs/NAME.md from a run's results (scripts/bench: benchmarks, scripts/reliability:
 * reliability): the generated markdown `md`, then the hand-written notes kept from the old file.
 */
export async function writeDocs(name: string, result: unknown, md: string): Promise<void> {
  await writeJson(join(ROOT, 'docs', `${name}.json`), result);
  const file = join(ROOT, 'docs', `${name}.md`);
  await writeFile(file, md + (await keptNotes(file)));
}

/** `--from-json FILE`: measure nothing, write docs/NAME.{json,md} from an earlier run's results; those results. */
export async function docsFromJson<T>(file: string, name: string, markdown: (r: T) => string): Promise<T> {
  const result = await readJson<T>(file);
  await writeDocs(name, result, markdown(result));
  return result;
}
