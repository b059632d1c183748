/**
 * What every experiment of scripts/bench works with: the corpus in its source registry, the key and
 * spec, the bundle paths, where the samples go, and the small helpers the experiments share (the
 * flags that point Lading at a registry, skopeo's push, a registry for the length of a step).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type RegistryServer, startRegistry } from '@lading/testkit';
import { BUILD_BIN, ladingEnv, SKOPEO } from '../lib/common.ts';
import type { Corpus } from '../lib/corpus.ts';
import type { Runs } from '../lib/report.ts';
import { measure, type Step } from '../lib/run.ts';

export interface Bench {
  readonly runs: Runs;
  /** Where GNU time's files and the commands' --json go. */
  readonly tmp: string;
  readonly corpus: Corpus;
  /** The registry the corpus was pushed into (the source of every build). */
  readonly src: RegistryServer;
  /** Registries to stop on the way out (each step removes its own when it is done). */
  readonly registries: RegistryServer[];
  readonly spec: string;
  readonly key: string;
  readonly pub: string;
  /** `REPO/(manifests|blobs)/DIGEST` per line: what the raw pull fetches. */
  readonly blobList: string;
  /** `DIGEST FILE` per line: what the raw upload sends. */
  readonly uploadList: string;
  readonly out: string;
  readonly bundle: string;
  readonly peerTar: string;
  /** Parallel transfers of the raw upload, and of the raw pull. */
  readonly conc: number;
  readonly pullConc: number;
  /** Size of the last bundle Lading built. */
  bundleBytes: number;
}

/** Runs Lading's side and the peer's, in the order asked for (alternated between repetitions). */
export async function pair(
  ladingFirst: boolean,
  l: () => Promise<void>,
  p: () => Promise<void>,
): Promise<void> {
  if (ladingFirst) {
    await l();
    await p();
  } else {
    await p();
    await l();
  }
}

/** Plain HTTP to the source registry, and an empty content cache in the process's own HOME (a cold build). */
export function ladingSourceFlags(src: RegistryServer, home: string): string[] {
  return ['--plain-http-host', src.host, '--cache', join(home, 'cache')];
}

/** `lading-build create` of `spec` into `output`, signed with `key`, pulling from `src` with its cache in `home`. */
export function createArgs(o: {
  spec: string;
  output: string;
  key: string;
  src: RegistryServer;
  home: string;
  json?: boolean;
}): string[] {
  return [
    BUILD_BIN,
    'create',
    '--spec',
    o.spec,
    '--output',
    o.output,
    '--key',
    o.key,
    ...(o.json ? ['--json'] : []),
    ...ladingSourceFlags(o.src, o.home),
  ];
}

export function ladingTargetFlags(dst: RegistryServer): string[] {
  return ['--registry', dst.host, '--plain-http'];
}

export async function peerEnv(): Promise<NodeJS.ProcessEnv> {
  const { env } = await ladingEnv();
  return env;
}

export async function readJsonOr(file: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as unknown;
  } catch {
    return undefined;
  }
}

/** A fresh registry on 127.0.0.1 for the length of `fn` (stopped after, also when `fn` throws). */
export async function withRegistry(b: Bench, fn: (dst: RegistryServer) => Promise<void>): Promise<void> {
  const dst = await startRegistry({ mode: 'http' });
  b.registries.push(dst);
  try {
    await fn(dst);
  } finally {
    await dst.stop();
    b.registries.splice(b.registries.indexOf(dst), 1);
  }
}

/** skopeo's arguments to copy one image of an OCI layout to a plain-HTTP registry, digests preserved. */
export function skopeoPushArgs(
  layoutDir: string,
  img: { name: string; tag: string },
  host: string,
): string[] {
  return [
    '--insecure-policy',
    'copy',
    '--all',
    '--quiet',
    '--preserve-digests',
    '--dest-tls-verify=false',
    `oci:${layoutDir}:${img.name}:${img.tag}`,
    `docker://${host}/${img.name}:${img.tag}`,
  ];
}

/** skopeo copies one image of an OCI layout to a plain-HTTP registry, digests preserved (timed). */
export async function skopeoPush(
  layoutDir: string,
  img: { name: string; tag: string },
  host: string,
  tmp: string,
  label: string,
): Promise<Step> {
  return measure(SKOPEO, skopeoPushArgs(layoutDir, img, host), { tmp, env: await peerEnv(), label });
}

/** Pushes the corpus into `reg` with skopeo, two images at a time; the wall time in ms. */
export async function seed(corpus: Corpus, reg: RegistryServer, tmp: string): Promise<number> {
  const t0 = Date.now();
  const queue = [...corpus.images];
  const worker = async (): Promise<void> => {
    for (let img = queue.shift(); img; img = queue.shift()) {
      await skopeoPush(corpus.layoutDir, img, reg.host, tmp, 'seed');
    }
  };
  await Promise.all([worker(), worker()]);
  return Date.now() - t0;
}
