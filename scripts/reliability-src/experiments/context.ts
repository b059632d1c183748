/**
 * What every experiment of scripts/reliability works with: the run's options, the context setup
 * makes (source registry, keys, the clean bundle and what its push gives), and the Lading commands
 * as the experiments run them (each in its own HOME).
 */
import { createHash } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { type RegistryServer, startRegistry, type TestImage } from '@lading/testkit';
import { BUILD_BIN, LOAD_BIN, ladingEnv, NODE } from '../../bench-src/lib/common.ts';
import { type Ran, run } from '../lib/proc.ts';
import type { RegistryState } from '../lib/registry-state.ts';

/** The flags, resolved (main.ts). */
export interface Options {
  smoke: boolean;
  trials: number;
  faultRuns: number;
  rates: number[];
  seed: number;
  /** The seeded generator of the kill points, one sequence for the whole run. */
  rnd: () => number;
}

export const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');
export const fileSha = async (f: string): Promise<string> => sha256(await readFile(f));

export interface Ctx {
  opts: Options;
  src: RegistryServer;
  images: TestImage[];
  key: string;
  pub: string;
  otherKey: string;
  otherPub: string;
  spec: string;
  specDir: string;
  clean: string;
  cleanSha: string;
  cleanState: RegistryState;
  createMs: number;
  pushMs: number;
}

export const stops: (() => Promise<void>)[] = [];

export async function registry(): Promise<RegistryServer> {
  const r = await startRegistry({ mode: 'http' });
  stops.push(r.stop);
  return r;
}

export async function stopRegistry(r: RegistryServer): Promise<void> {
  await r.stop();
}

export async function create(
  ctx: Pick<Ctx, 'spec' | 'key'>,
  output: string,
  extra: { cache?: string; killAtMs?: number; plainHttp: string; timeoutMs?: number },
): Promise<Ran> {
  const { env, home } = await ladingEnv();
  const r = await run(
    NODE,
    [
      BUILD_BIN,
      'create',
      '--spec',
      ctx.spec,
      '--output',
      output,
      '--key',
      ctx.key,
      '--plain-http-host',
      extra.plainHttp,
      '--cache',
      extra.cache ?? join(home, 'cache'),
    ],
    {
      env,
      ...(extra.killAtMs !== undefined ? { killAtMs: extra.killAtMs } : {}),
      ...(extra.timeoutMs ? { timeoutMs: extra.timeoutMs } : {}),
    },
  );
  await rm(home, { recursive: true, force: true });
  return r;
}

export async function push(
  bundle: string,
  host: string,
  pub: string,
  extra: { killAtMs?: number; beforeKill?: () => void; timeoutMs?: number; cwd?: string } = {},
): Promise<Ran> {
  const { env } = await ladingEnv();
  return run(NODE, [LOAD_BIN, 'push', bundle, '--key', pub, '--registry', host, '--plain-http'], {
    env,
    ...extra,
  });
}

export async function verify(bundle: string, pub: string, cwd?: string): Promise<Ran> {
  const { env } = await ladingEnv();
  return run(NODE, [LOAD_BIN, 'verify', bundle, '--key', pub], { env, ...(cwd ? { cwd } : {}) });
}
