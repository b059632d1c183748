import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { writeKeyPair } from '@lading/core';
import {
  isolatedEnv,
  type RegistryServer,
  seedRegistry,
  startRegistry,
  type TestImage,
  tmpDir,
  writeTestImages,
} from '@lading/testkit';
import { type ChartRepo, startChartRepo } from '@lading/testkit/chart-repo';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const BIN = join(ROOT, 'packages/builder/bin/run.js');
const pexec = promisify(execFile);

export interface Fixture {
  dir: string;
  layout: string;
  registry: RegistryServer;
  images: TestImage[];
  chartRepo: ChartRepo;
  chartDir: string;
  spec: string;
  key: string;
  pub: string;
  ref(name: string): string;
  image(name: string): TestImage;
  stop(): Promise<void>;
}

/** A small chart whose discovered images live in the test registry (map, string and annotation forms). */
export async function writeShopChart(dir: string, host: string): Promise<string> {
  const chart = join(dir, 'shopchart');
  await mkdir(join(chart, 'templates'), { recursive: true });
  await writeFile(
    join(chart, 'Chart.yaml'),
    `apiVersion: v2
name: shopchart
description: A test chart whose images are in the local registry.
version: 0.3.1
appVersion: "1.0"
annotations:
  artifacthub.io/images: |
    - name: base-b
      image: ${host}/demo/base-b:1
`,
  );
  await writeFile(
    join(chart, 'values.yaml'),
    `image:
  registry: ${host}
  repository: demo/app
  tag: "1.0"
worker:
  image: ${host}/demo/base-a:1
`,
  );
  await writeFile(
    join(chart, 'templates', 'deployment.yaml'),
    'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\n',
  );
  return chart;
}

export function shopSpec(host: string, repoUrl: string, extra = ''): string {
  return `apiVersion: lading/v1
name: shop
version: 1.0.0
images:
  - ref: ${host}/demo/multi:3.0
    platforms: [linux/amd64, linux/arm64]
  - ${host}/demo/legacy:2.0
charts:
  - name: shopchart
    repo: ${repoUrl}
    version: ^0.3.0
releases:
  - name: shop
    chart: shopchart
    namespace: shop
    values: [values/shop.yaml]
files:
  - docs/RUNBOOK.md
${extra}`;
}

export async function startFixture(
  opts: { mode?: 'http' | 'tls' | 'basic' | 'token'; bigBytes?: number } = {},
): Promise<Fixture> {
  const tmp = await tmpDir('lading-build-test-');
  const dir = tmp.path;
  const layout = join(dir, 'src-layout');
  const all = await writeTestImages(layout, { largeLayerBytes: opts.bigBytes ?? 2 * 1024 * 1024 });
  const registry = await startRegistry({ mode: opts.mode ?? 'http' });
  const wanted = ['demo/app', 'demo/legacy', 'demo/multi', 'demo/base-a', 'demo/base-b', 'demo/big'];
  const images = all.filter((i) => wanted.includes(i.name));
  await seedRegistry(registry, layout, images);
  const chartDir = await writeShopChart(join(dir, 'chart-src'), registry.host);
  const chartRepo = await startChartRepo({ charts: [chartDir] });
  await mkdir(join(dir, 'values'));
  await mkdir(join(dir, 'docs'));
  await writeFile(join(dir, 'values', 'shop.yaml'), 'replicaCount: 1\n');
  await writeFile(join(dir, 'docs', 'RUNBOOK.md'), '# Runbook\n');
  const spec = join(dir, 'lading.yaml');
  await writeFile(spec, shopSpec(registry.host, chartRepo.url));
  const keys = await writeKeyPair(join(dir, 'release'));
  return {
    dir,
    layout,
    registry,
    images,
    chartRepo,
    chartDir,
    spec,
    key: keys.privateKeyPath,
    pub: keys.publicKeyPath,
    ref: (name: string) => {
      const i = images.find((x) => x.name === name);
      if (!i) throw new Error(`no test image ${name}`);
      return `${registry.host}/${i.name}:${i.tag}`;
    },
    image: (name: string) => {
      const i = images.find((x) => x.name === name);
      if (!i) throw new Error(`no test image ${name}`);
      return i;
    },
    stop: async () => {
      await chartRepo.stop();
      await registry.stop();
      await tmp.cleanup();
    },
  };
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run the built CLI (packages/builder/bin/run.js, which loads dist/). */
export async function runCli(args: string[], env: NodeJS.ProcessEnv = {}, cwd = ROOT): Promise<CliResult> {
  try {
    const { stdout, stderr } = await pexec(process.execPath, [BIN, ...args], {
      cwd,
      env: { ...isolatedEnv(), NODE_OPTIONS: '', ...env },
      maxBuffer: 64 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

export async function run(
  cmd: string,
  args: string[],
  cwd?: string,
): Promise<{ stdout: string; stderr: string }> {
  return pexec(cmd, args, { ...(cwd ? { cwd } : {}), maxBuffer: 64 * 1024 * 1024 });
}

let built: Promise<unknown> | undefined;

/** Build the CLI's dist/ (and its workspace dependencies) once per test process. */
export function ensureBuilt(): Promise<unknown> {
  built ??= pexec('pnpm', ['exec', 'turbo', 'run', 'build', '--filter=@lading/builder...'], {
    cwd: ROOT,
    maxBuffer: 1 << 26,
  });
  return built;
}
