/**
 * The bundle's own trust chain under attack (issue 10 §3), the `trust` section: a swapped bundle
 * after verify (swap.ts) and a hostile NAME.tar.sha256 (hostile-sums.ts).
 */
import type { RegistryServer, TestImage } from '@lading/testkit';
import { BUILD_BIN, fresh, LOAD_BIN, ladingEnv, log, NODE } from '../../bench-src/lib/common.ts';
import { lastError, type Ran, run } from '../lib/proc.ts';
import { type Ctx, create, registry, verify } from './context.ts';
import { hostileSumsCases } from './hostile-sums.ts';
import { swapCases } from './swap.ts';

export interface TrustCase {
  id: string;
  what: string;
  /** `serve`/`push` (swap) or `verify` (hostile sums): its exit. */
  exit: number;
  /** `fetch` exit (hostile sums), -1 when not run. */
  fetchExit: number;
  /** What the attack got out: images served or repositories pushed (swap); files written or replaced beside the output (fetch). */
  leaked: string[];
  expected: string;
  ok: boolean;
  message: string;
}

export interface TrustRunners {
  images: TestImage[];
  srcHost: string;
  dir: string;
  /** The clean bundle (the newer one) and the key pair that signed it. */
  clean: string;
  key: string;
  pub: string;
  otherKey: string;
  /** `lading-build create --spec SPEC --output OUT --key KEY` against the source registry. */
  create(spec: string, output: string): Promise<Ran>;
  /** `lading-build split BUNDLE --size SIZE --key KEY`. */
  split(bundle: string, size: string): Promise<Ran>;
  verify(bundle: string): Promise<Ran>;
  /** `lading-load push BUNDLE --key PUB --registry HOST --plain-http ARGS…`. */
  push(bundle: string, host: string, env: NodeJS.ProcessEnv, args: string[]): Promise<Ran>;
  registry(): Promise<RegistryServer>;
  node: string;
  loadBin: string;
  env(): Promise<NodeJS.ProcessEnv>;
  lastError(r: Ran): string;
  log(m: string): void;
}

export async function trustCases(r: TrustRunners): Promise<TrustCase[]> {
  return [...(await swapCases(r)), ...(await hostileSumsCases(r))];
}

/** The section, run against the clean run's context. */
export async function trustSection(ctx: Ctx): Promise<TrustCase[]> {
  return trustCases({
    images: ctx.images,
    srcHost: ctx.src.host,
    dir: await fresh('trust'),
    clean: ctx.clean,
    key: ctx.key,
    pub: ctx.pub,
    otherKey: ctx.otherKey,
    create: (spec, output) => create({ spec, key: ctx.key }, output, { plainHttp: ctx.src.host }),
    split: async (bundle, size) => {
      const { env } = await ladingEnv();
      return run(NODE, [BUILD_BIN, 'split', bundle, '--size', size, '--key', ctx.key], { env });
    },
    verify: (bundle) => verify(bundle, ctx.pub),
    push: (bundle, host, env, extra) =>
      run(NODE, [LOAD_BIN, 'push', bundle, '--key', ctx.pub, '--registry', host, '--plain-http', ...extra], {
        env,
      }),
    registry,
    node: NODE,
    loadBin: LOAD_BIN,
    env: async () => (await ladingEnv()).env,
    lastError,
    log,
  });
}
