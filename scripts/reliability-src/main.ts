/**
 * scripts/reliability: kill -9 during push and create, a fault-injecting proxy, a tamper matrix and an
 * archive attack corpus — each checked against what a clean run gives. Run through the bash wrapper.
 */
import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { buffer as streamBuffer } from 'node:stream/consumers';
import { createGzip } from 'node:zlib';
import {
  type RegistryServer,
  seedRegistry,
  startRegistry,
  type TestImage,
  writeTestImages,
} from '@lading/testkit';
import {
  BUILD_BIN,
  fresh,
  keptNotes,
  LOAD_BIN,
  ladingEnv,
  log,
  machine,
  NODE,
  parseArgs,
  ROOT,
  workDir,
  writeJson,
} from '../bench-src/lib/common.ts';
import { type FaultProxy, prng, startFaultProxy } from './lib/fault-proxy.ts';
import { lastError, type Ran, run } from './lib/proc.ts';
import { provenanceCases } from './lib/provenance.ts';
import { catalog, type RegistryState, registryState, sameState, stateDiff } from './lib/registry-state.ts';
import {
  type Case,
  type FaultRun,
  fromJson,
  type KillTrial,
  markdown,
  pct,
  type Result,
} from './lib/report.ts';
import { buildTar, type Member, member, memberName, parseTar } from './lib/tar.ts';
import { trustCases } from './lib/trust.ts';

const HELP = `scripts/reliability [--trials N] [--fault-runs N] [--rates 0,0.05,0.2] [--seed N] [--smoke] [--docs] [--json FILE]
  --trials N       kill -9 trials for push and for create (default 20)
  --fault-runs N   runs per fault rate and command (default 3)
  --rates LIST     fault rates of the proxy (default 0,0.05,0.2)
  --seed N         seed of the kill points and of the proxy's faults (default 1)
  --smoke          2 trials, 1 fault run at rate 0.2, a few tamper and attack cases, no docs
  --docs           also write docs/reliability.md and docs/reliability.json
  --json FILE      where the results go (default bench-out/results/reliability[-smoke].json)
  --only LIST      run only these sections: kill-push,kill-create,faults,tamper,trust,provenance (tamper includes the attacks)
  --from-json FILE run nothing: write docs/reliability.{md,json} from an earlier run's results`;

const args = parseArgs(process.argv.slice(2), {
  trials: 'string',
  'fault-runs': 'string',
  rates: 'string',
  seed: 'string',
  smoke: 'boolean',
  docs: 'boolean',
  json: 'string',
  help: 'boolean',
  'from-json': 'string',
  only: 'string',
});
const only = args.only ? new Set(String(args.only).split(',')) : undefined;
const wants = (section: string): boolean => !only || only.has(section);
if (args.help) {
  console.log(HELP);
  process.exit(0);
}
const smoke = args.smoke === true;
const trials = Number(args.trials ?? (smoke ? 2 : 20));
const faultRuns = Number(args['fault-runs'] ?? (smoke ? 1 : 3));
const rates = String(args.rates ?? (smoke ? '0.2' : '0,0.05,0.2'))
  .split(',')
  .map(Number);
const seed = Number(args.seed ?? 1);
const jsonOut =
  (args.json as string | undefined) ??
  join(ROOT, 'bench-out', 'results', `reliability${smoke ? '-smoke' : ''}.json`);
const command = `scripts/reliability ${process.argv.slice(2).join(' ')}`.trim();
const rnd = prng(seed);

const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');
const fileSha = async (f: string): Promise<string> => sha256(await readFile(f));

interface Ctx {
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

const stops: (() => Promise<void>)[] = [];

async function registry(): Promise<RegistryServer> {
  const r = await startRegistry({ mode: 'http' });
  stops.push(r.stop);
  return r;
}

async function stopRegistry(r: RegistryServer): Promise<void> {
  await r.stop();
}

async function create(
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

async function push(
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

async function verify(bundle: string, pub: string, cwd?: string): Promise<Ran> {
  const { env } = await ladingEnv();
  return run(NODE, [LOAD_BIN, 'verify', bundle, '--key', pub], { env, ...(cwd ? { cwd } : {}) });
}

// ------------------------------------------------------------------------------------------ setup

async function setup(): Promise<Ctx> {
  const dir = await fresh('setup');
  const layout = join(dir, 'layout');
  const images = await writeTestImages(layout, { largeLayerBytes: (smoke ? 4 : 24) * 1024 * 1024 });
  const src = await registry();
  await seedRegistry(src, layout, images);
  const { env } = await ladingEnv();
  const keys = await run(NODE, [BUILD_BIN, 'keys', 'generate', '--output', join(dir, 'release')], { env });
  if (keys.code !== 0) throw new Error(`keys generate failed: ${keys.stderr}`);
  const other = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const otherKey = join(dir, 'other.key');
  const otherPub = join(dir, 'other.pub');
  await writeFile(otherKey, other.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  await writeFile(otherPub, other.publicKey.export({ type: 'spki', format: 'pem' }));
  const specDir = join(dir, 'spec');
  await mkdir(join(specDir, 'docs'), { recursive: true });
  await writeFile(join(specDir, 'docs', 'RUNBOOK.md'), '# Runbook\n\nLoad the bundle, then install.\n');
  const spec = join(specDir, 'lading.yaml');
  await writeFile(
    spec,
    [
      'apiVersion: lading/v1',
      'name: rel',
      'version: 1.0.0',
      'images:',
      ...images.map((i) => `  - ${src.host}/${i.name}:${i.tag}`),
      'files:',
      '  - docs/RUNBOOK.md',
      '',
    ].join('\n'),
  );
  const ctx0 = { spec, key: join(dir, 'release.key') };
  const clean = join(dir, 'clean.tar');
  const c = await create(ctx0, clean, { plainHttp: src.host });
  if (c.code !== 0) throw new Error(`clean create failed (exit ${c.code}): ${c.stderr}`);
  const reg = await registry();
  const p = await push(clean, reg.host, join(dir, 'release.pub'));
  if (p.code !== 0) throw new Error(`clean push failed (exit ${p.code}): ${p.stderr}`);
  const cleanState = await registryState(reg.url);
  await stopRegistry(reg);
  log(
    `setup: ${images.length} images, bundle ${(await stat(clean)).size} bytes; clean create ${Math.round(c.ms)} ms, clean push ${Math.round(p.ms)} ms; ${Object.keys(cleanState).length} tags`,
  );
  return {
    src,
    images,
    ...ctx0,
    pub: join(dir, 'release.pub'),
    otherKey,
    otherPub,
    specDir,
    clean,
    cleanSha: await fileSha(clean),
    cleanState,
    createMs: c.ms,
    pushMs: p.ms,
  };
}

// ------------------------------------------------------------------------------------------ kill -9

async function killPush(ctx: Ctx): Promise<KillTrial[]> {
  const out: KillTrial[] = [];
  for (let t = 1; t <= trials; t++) {
    const reg = await registry();
    const killAtMs = Math.round(rnd() * ctx.pushMs * 1.1);
    let midTransfer = false;
    const first = await push(ctx.clean, reg.host, ctx.pub, {
      killAtMs,
      beforeKill: () => {
        midTransfer = existsSync(join(reg.dataDir, 'docker', 'registry', 'v2'));
      },
    });
    const again = await push(ctx.clean, reg.host, ctx.pub);
    const state = await registryState(reg.url);
    await stopRegistry(reg);
    const ok = again.code === 0 && sameState(ctx.cleanState, state);
    const trial: KillTrial = {
      trial: t,
      killAtMs,
      killed: first.killed,
      midTransfer: first.killed && midTransfer,
      rerunExit: again.code,
      rerunMs: Math.round(again.ms),
      ok,
    };
    if (!ok) trial.problem = again.code !== 0 ? lastError(again) : stateDiff(ctx.cleanState, state);
    log(
      `kill push ${t}/${trials}: at ${killAtMs} ms (${first.killed ? (midTransfer ? 'mid-transfer' : 'before transfer') : 'had finished'}), re-run exit ${again.code}, ${ok ? 'registry identical' : `PROBLEM ${trial.problem}`}`,
    );
    out.push(trial);
  }
  return out;
}

async function killCreate(ctx: Ctx): Promise<KillTrial[]> {
  const out: KillTrial[] = [];
  for (let t = 1; t <= trials; t++) {
    const dir = await fresh('kill-create');
    const cache = join(dir, 'cache');
    const outDir = join(dir, 'out');
    await mkdir(outDir);
    const output = join(outDir, 'rel.tar');
    const killAtMs = Math.round(rnd() * ctx.createMs * 1.1);
    const first = await create(ctx, output, { cache, killAtMs, plainHttp: ctx.src.host });
    // A kill after the final rename finds the complete bundle in place: fine. Anything else there is not.
    const atOutput = first.killed && existsSync(output) && (await fileSha(output)) !== ctx.cleanSha;
    const completeAtKill = first.killed && existsSync(output) && !atOutput;
    const leftovers = first.killed ? (await readdir(outDir)).filter((n) => n !== 'rel.tar') : [];
    if (first.killed) await rm(output, { force: true });
    const again = first.killed ? await create(ctx, output, { cache, plainHttp: ctx.src.host }) : first;
    const same = again.code === 0 && existsSync(output) && (await fileSha(output)) === ctx.cleanSha;
    const ok = !atOutput && same;
    const trial: KillTrial = {
      trial: t,
      killAtMs,
      killed: first.killed,
      rerunExit: again.code,
      rerunMs: Math.round(again.ms),
      ok,
      leftovers,
    };
    if (completeAtKill) trial.completeAtKill = true;
    if (!ok)
      trial.problem = atOutput
        ? 'a partial or wrong file was left at the output path after the kill'
        : again.code !== 0
          ? lastError(again)
          : 'the re-run bundle differs from the clean build';
    log(
      `kill create ${t}/${trials}: at ${killAtMs} ms (${first.killed ? 'killed' : 'had finished'}), output path ${atOutput ? 'NOT EMPTY' : 'empty'}, leftovers ${leftovers.length}, re-run exit ${again.code}, ${same ? 'byte-identical' : 'DIFFERENT'}`,
    );
    await rm(dir, { recursive: true, force: true });
    out.push(trial);
  }
  return out;
}

// ------------------------------------------------------------------------------------------ faults

/** One fault run's record (and its log line): what was injected, and why it failed if it did. */
function faultRun(
  at: Pick<FaultRun, 'command' | 'rate' | 'run'>,
  r: Ran,
  proxy: FaultProxy,
  completed: boolean,
  timeoutMs: number,
  mismatch: () => string,
): FaultRun {
  const { requests, ...faults } = proxy.stats;
  const fr: FaultRun = { ...at, exit: r.code, ms: Math.round(r.ms), completed, requests, faults };
  if (!completed) {
    fr.problem = r.timedOut ? `timed out after ${timeoutMs} ms` : r.code !== 0 ? lastError(r) : mismatch();
    fr.faultEvents = proxy.events.map((e) => `${e.kind} ${e.method} ${e.path}`).reverse();
  }
  log(
    `faults ${at.command} rate ${at.rate} run ${at.run}: exit ${r.code} in ${fr.ms} ms, ${requests} requests, faults ${JSON.stringify(faults)}${completed ? '' : ` PROBLEM ${fr.problem}`}`,
  );
  return fr;
}

async function bundleBlobs(file: string): Promise<string> {
  const names = parseTar(await readFile(file))
    .map(memberName)
    .filter((n) => n.startsWith('blobs/'))
    .sort();
  return sha256(names.join('\n'));
}

async function faults(ctx: Ctx): Promise<FaultRun[]> {
  const out: FaultRun[] = [];
  const cleanBlobs = await bundleBlobs(ctx.clean);
  const timeoutMs = smoke ? 120_000 : 300_000;
  for (const rate of rates) {
    for (let i = 1; i <= faultRuns; i++) {
      // push through the proxy into a fresh registry
      {
        const reg = await registry();
        const proxy = await startFaultProxy({ upstream: reg.url, rate, seed: seed * 1000 + i + rate * 100 });
        const r = await push(ctx.clean, proxy.host, ctx.pub, { timeoutMs });
        await proxy.stop();
        const state = await registryState(reg.url);
        await stopRegistry(reg);
        const completed = r.code === 0 && sameState(ctx.cleanState, state);
        out.push(
          faultRun({ command: 'push', rate, run: i }, r, proxy, completed, timeoutMs, () =>
            stateDiff(ctx.cleanState, state),
          ),
        );
      }
      // create with the source registry behind the proxy
      {
        const proxy = await startFaultProxy({
          upstream: ctx.src.url,
          rate,
          seed: seed * 2000 + i + rate * 100,
        });
        const dir = await fresh('fault-create');
        const spec = join(ctx.specDir, `lading-proxy-${proxy.host.split(':')[1]}.yaml`);
        await writeFile(spec, (await readFile(ctx.spec, 'utf8')).replaceAll(ctx.src.host, proxy.host));
        const output = join(dir, 'rel.tar');
        const r = await create({ spec, key: ctx.key }, output, { plainHttp: proxy.host, timeoutMs });
        await proxy.stop();
        const completed = r.code === 0 && (await bundleBlobs(output)) === cleanBlobs;
        out.push(
          faultRun(
            { command: 'create', rate, run: i },
            r,
            proxy,
            completed,
            timeoutMs,
            () => 'blobs differ from the clean bundle',
          ),
        );
        await rm(dir, { recursive: true, force: true });
        await rm(spec, { force: true });
      }
    }
  }
  return out;
}

// ------------------------------------------------------------------------------------------ tamper

type Mutation = { id: string; what: string; make: (m: Member[]) => Buffer; key?: 'other' };

function kindOf(name: string, blobKinds: Map<string, string>): string {
  if (name.startsWith('blobs/sha256/')) return blobKinds.get(name) ?? 'blob';
  if (name.startsWith('files/')) return 'files/*';
  return name;
}

function flip(b: Buffer): Buffer {
  const c = Buffer.from(b);
  const i = Math.floor(c.length / 2);
  c[i] = c[i]! ^ 0x01;
  return c;
}

function sumsFor(members: Member[]): string {
  return (
    members
      .map((m) => memberName(m))
      .filter((n) => n !== 'SHA256SUMS' && n !== 'SHA256SUMS.sig')
      .map((n) => `${sha256(members.find((m) => memberName(m) === n)!.data)}  ${n}`)
      .join('\n') + '\n'
  );
}

async function tamperCases(ctx: Ctx): Promise<Mutation[]> {
  const base = parseTar(await readFile(ctx.clean));
  const names = base.map(memberName);
  // which blob is a manifest, an index, a config, a layer
  const blobKinds = new Map<string, string>();
  for (const m of base) {
    const n = memberName(m);
    if (!n.startsWith('blobs/')) continue;
    const text = m.data.length < 1 << 20 ? m.data.toString('utf8') : '';
    let kind = 'layer blob';
    try {
      const j = JSON.parse(text) as {
        mediaType?: string;
        manifests?: unknown;
        config?: unknown;
        rootfs?: unknown;
      };
      kind = j.manifests ? 'index blob' : j.config ? 'manifest blob' : j.rootfs ? 'config blob' : 'json blob';
    } catch {
      // binary: a layer
    }
    blobKinds.set(n, kind);
  }
  const pick = new Map<string, number>();
  base.forEach((m, i) => {
    const k = kindOf(memberName(m), blobKinds);
    if (!pick.has(k)) pick.set(k, i);
  });
  // prefer the largest layer
  let big = -1;
  base.forEach((m, i) => {
    if (blobKinds.get(memberName(m)) === 'layer blob' && (big < 0 || m.data.length > base[big]!.data.length))
      big = i;
  });
  if (big >= 0) pick.set('layer blob', big);
  const with_ = (i: number, data: Buffer): Member[] => base.map((m, j) => (j === i ? { ...m, data } : m));
  const cases: Mutation[] = [];
  for (const [kind, i] of pick) {
    cases.push({
      id: `flip:${kind}`,
      what: `one bit flipped in ${kind}`,
      make: () => buildTar(with_(i, flip(base[i]!.data))),
    });
    cases.push({
      id: `truncate:${kind}`,
      what: `${kind} cut to half its length (valid tar)`,
      make: () => buildTar(with_(i, base[i]!.data.subarray(0, Math.floor(base[i]!.data.length / 2)))),
    });
    cases.push({
      id: `drop:${kind}`,
      what: `${kind} removed`,
      make: () => buildTar(base.filter((_, j) => j !== i)),
    });
  }
  const extra = Buffer.from('an extra blob nobody listed\n');
  cases.push({
    id: 'add:blob',
    what: 'an extra blob (named by its own digest) not in SHA256SUMS',
    make: () => buildTar([...base, member({ name: `blobs/sha256/${sha256(extra)}`, data: extra })]),
  });
  cases.push({
    id: 'add:file',
    what: 'an extra files/extra.sh not in SHA256SUMS',
    make: () => buildTar([...base, member({ name: 'files/extra.sh', data: '#!/bin/sh\necho pwned\n' })]),
  });
  const idx = (n: string): number => names.indexOf(n);
  cases.push({
    id: 'reorder:sums-last',
    what: 'SHA256SUMS and its signature moved after the blobs',
    make: () => {
      const meta = [idx('SHA256SUMS'), idx('SHA256SUMS.sig')];
      return buildTar([...base.filter((_, j) => !meta.includes(j)), ...meta.map((j) => base[j]!)]);
    },
  });
  cases.push({
    id: 'reorder:index-first',
    what: 'index.json moved before lading.json',
    make: () => {
      const i = idx('index.json');
      const rest = base.filter((_, j) => j !== i);
      rest.splice(1, 0, base[i]!);
      return buildTar(rest);
    },
  });
  cases.push({
    id: 'truncate:archive',
    what: 'the tar cut at 60 % (inside a blob)',
    make: () => {
      const all = buildTar(base);
      return all.subarray(0, Math.floor(all.length * 0.6));
    },
  });
  cases.push({
    id: 'truncate:archive-at-member',
    what: 'the tar cut at a member boundary: last blob and end blocks gone',
    make: () => buildTar(base.slice(0, -1), { end: false }),
  });
  const otherPem = await readFile(ctx.otherKey, 'utf8');
  const sumsI = idx('SHA256SUMS');
  const sigI = idx('SHA256SUMS.sig');
  cases.push({
    id: 'sig:other-key',
    what: 'SHA256SUMS.sig replaced by a valid signature from another key',
    make: () => buildTar(with_(sigI, sign('sha256', base[sumsI]!.data, otherPem))),
  });
  cases.push({
    id: 'sig:garbage',
    what: 'SHA256SUMS.sig replaced by random bytes',
    make: () => buildTar(with_(sigI, randomBytes(base[sigI]!.data.length))),
  });
  if (big >= 0) {
    cases.push({
      id: 'sums:updated-stale-sig',
      what: 'a layer changed and SHA256SUMS rewritten to match; signature left as it was',
      make: () => {
        const ms = with_(big, flip(base[big]!.data));
        ms[sumsI] = { ...ms[sumsI]!, data: Buffer.from(sumsFor(ms)) };
        return buildTar(ms);
      },
    });
    cases.push({
      id: 'sums:resigned-other-key',
      what: "a layer changed, SHA256SUMS rewritten and re-signed with the attacker's key",
      make: () => {
        const ms = with_(big, flip(base[big]!.data));
        const sums = Buffer.from(sumsFor(ms));
        ms[sumsI] = { ...ms[sumsI]!, data: sums };
        ms[sigI] = { ...ms[sigI]!, data: sign('sha256', sums, otherPem) };
        return buildTar(ms);
      },
    });
  }
  cases.push({
    id: 'key:wrong',
    what: 'an untouched bundle checked with another public key',
    make: () => buildTar(base),
    key: 'other',
  });
  return cases;
}

// ------------------------------------------------------------------------------------------ attacks

interface Attack {
  id: string;
  what: string;
  /** Extra members, and whether to replace the bundle's (or chart's) member of the same name. */
  members: (ctx: AttackCtx) => (Member & { declaredSize?: number })[];
  /** Paths (absolute, or relative to the process's working folder) that must not exist afterwards. */
  targets: (ctx: AttackCtx) => string[];
}

interface AttackCtx {
  outside: string;
  prefix: string;
}

function attacks(): Attack[] {
  return [
    {
      id: 'traversal',
      what: 'a member named ../../<outside>/evil',
      members: (c) => [member({ name: `${c.prefix}../../../outside/evil-traversal`, data: 'pwned\n' })],
      targets: (c) => [`${c.prefix}../../../outside/evil-traversal`, join(c.outside, 'evil-traversal')],
    },
    {
      id: 'absolute',
      what: 'a member with an absolute path into <outside>',
      members: (c) => [member({ name: join(c.outside, 'evil-absolute'), data: 'pwned\n' })],
      targets: (c) => [join(c.outside, 'evil-absolute')],
    },
    {
      id: 'symlink-out',
      what: 'a symlink to <outside>, then a file written through it',
      members: (c) => [
        member({ name: `${c.prefix}files-link`, type: '2', linkname: c.outside }),
        member({ name: `${c.prefix}files-link/evil-symlink`, data: 'pwned\n' }),
      ],
      targets: (c) => [join(c.outside, 'evil-symlink')],
    },
    {
      id: 'symlink-etc',
      what: 'a symlink member pointing at /etc/passwd',
      members: (c) => [member({ name: `${c.prefix}passwd-link`, type: '2', linkname: '/etc/passwd' })],
      targets: () => [],
    },
    {
      id: 'hardlink-out',
      what: 'a hard link to /etc/passwd',
      members: (c) => [member({ name: `${c.prefix}passwd-hardlink`, type: '1', linkname: '/etc/passwd' })],
      targets: () => [],
    },
    {
      id: 'char-device',
      what: 'a character device (1,3 = /dev/null)',
      members: (c) => [member({ name: `${c.prefix}devnull`, type: '3', devmajor: 1, devminor: 3 })],
      targets: () => [],
    },
    {
      id: 'block-device',
      what: 'a block device (8,0)',
      members: (c) => [member({ name: `${c.prefix}sda`, type: '4', devmajor: 8, devminor: 0 })],
      targets: () => [],
    },
    {
      id: 'fifo',
      what: 'a FIFO',
      members: (c) => [member({ name: `${c.prefix}fifo`, type: '6' })],
      targets: () => [],
    },
    {
      id: 'huge-size',
      what: 'a member whose header declares 1 TiB (base-256 size field) followed by 1 KiB',
      members: (c) => [
        member({ name: `${c.prefix}huge`, data: Buffer.alloc(1024, 0x41), declaredSize: 2 ** 40 }),
      ],
      targets: () => [],
    },
  ];
}

async function chartBase(prefix: string): Promise<Member[]> {
  return [
    member({ name: `${prefix}Chart.yaml`, data: 'apiVersion: v2\nname: evil\nversion: 0.1.0\n' }),
    member({
      name: `${prefix}values.yaml`,
      data: 'image:\n  repository: docker.io/library/nginx\n  tag: "1.27.3"\n',
    }),
    member({ name: `${prefix}templates/deploy.yaml`, data: 'kind: ConfigMap\n' }),
  ];
}

async function gzip(b: Buffer): Promise<Buffer> {
  return streamBuffer(Readable.from([b]).pipe(createGzip({ level: 6 })));
}

async function zeroBombTgz(prefix: string, bytes: number): Promise<Buffer> {
  // a tar whose values.yaml holds `bytes` zero bytes, gzip'd as a stream (never whole in memory)
  const head = buildTar(await chartBase(prefix), { end: false });
  const h = member({ name: `${prefix}templates/bomb.yaml`, data: '' });
  const hdr = buildTar([{ ...h, declaredSize: bytes }], { end: false });
  async function* gen(): AsyncGenerator<Buffer> {
    yield head;
    yield hdr;
    const chunk = Buffer.alloc(1 << 20, 0);
    for (let left = bytes; left > 0; left -= chunk.length)
      yield chunk.subarray(0, Math.min(left, chunk.length));
    yield Buffer.alloc(1024, 0);
  }
  return streamBuffer(Readable.from(gen()).pipe(createGzip({ level: 1 })));
}

async function runCases(
  ctx: Ctx,
  muts: Mutation[],
  attackList: Attack[],
): Promise<{ tamper: Case[]; bundleAttacks: Case[]; chartAttacks: Case[] }> {
  const dir = await fresh('tamper');
  const reg = await registry();
  const outside = join(workDir(), 'outside');
  await mkdir(outside, { recursive: true });
  const check = async (
    id: string,
    what: string,
    bundle: string,
    pub: string,
    targets: string[],
    cwd: string,
  ): Promise<Case> => {
    const v = await verify(bundle, pub, cwd);
    const p = await push(bundle, reg.host, pub, { cwd });
    const pushed = await catalog(reg.url);
    const escaped = targets.filter((t) => existsSync(resolve(cwd, t)));
    const refused = (c: number): boolean => c === 3;
    const ok = refused(v.code) && refused(p.code) && pushed.length === 0 && escaped.length === 0;
    const c: Case = {
      id,
      what,
      verifyExit: v.code,
      pushExit: p.code,
      pushed,
      escaped,
      expected: 'exit 3 from verify and push, nothing pushed, nothing outside',
      ok,
      message: lastError(v),
    };
    log(
      `${id}: verify ${v.code}, push ${p.code}, pushed ${pushed.length}, escaped ${escaped.length} ${ok ? 'ok' : 'PROBLEM'}`,
    );
    if (pushed.length) {
      // start over with an empty registry for the next case
      await rm(join(reg.dataDir, 'docker'), { recursive: true, force: true });
    }
    return c;
  };
  const tamper: Case[] = [];
  for (const m of muts) {
    const f = join(dir, 'tampered.tar');
    await writeFile(f, m.make([]));
    tamper.push(await check(m.id, m.what, f, m.key === 'other' ? ctx.otherPub : ctx.pub, [], dir));
    await rm(f, { force: true });
  }
  // bundle attacks: the malicious member goes right after the metadata (before the blobs)
  const base = parseTar(await readFile(ctx.clean));
  const sandbox = join(dir, 'sandbox', 'a', 'b');
  await mkdir(sandbox, { recursive: true });
  const bundleAttacks: Case[] = [];
  const actx: AttackCtx = { outside, prefix: '' };
  for (const a of attackList) {
    const ms = [...base];
    const at = ms.findIndex((m) => memberName(m).startsWith('blobs/'));
    ms.splice(at, 0, ...a.members(actx));
    const f = join(sandbox, 'attack.tar');
    await writeFile(f, buildTar(ms));
    bundleAttacks.push(await check(`bundle:${a.id}`, a.what, f, ctx.pub, a.targets(actx), sandbox));
  }
  // duplicate names in a bundle
  if (!smoke) {
    const i = base.findIndex((m) => memberName(m) === 'index.json');
    const dup = { ...base[i]!, data: Buffer.from('{"schemaVersion":2,"manifests":[]}') };
    const f = join(sandbox, 'attack.tar');
    await writeFile(f, buildTar([...base, dup]));
    bundleAttacks.push(
      await check(
        'bundle:duplicate-index',
        'a second index.json at the end, different content',
        f,
        ctx.pub,
        [],
        sandbox,
      ),
    );
    const b = base.findIndex((m) => memberName(m).startsWith('blobs/'));
    await writeFile(f, buildTar([...base, { ...base[b]!, data: Buffer.from('other content') }]));
    bundleAttacks.push(
      await check(
        'bundle:duplicate-blob',
        'a blob member repeated at the end with other content',
        f,
        ctx.pub,
        [],
        sandbox,
      ),
    );
  }
  await stopRegistry(reg);

  // chart attacks: `lading-build images CHART.tgz` and `lading-build create` with the chart as a local path
  const chartAttacks: Case[] = [];
  const cctx: AttackCtx = { outside, prefix: 'evil/' };
  const chartList: {
    id: string;
    what: string;
    tgz: () => Promise<Buffer>;
    targets: string[];
    control?: boolean;
  }[] = [
    {
      id: 'control',
      what: 'a valid chart (control: must be accepted)',
      tgz: async () => gzip(buildTar(await chartBase('evil/'))),
      targets: [],
      control: true,
    },
    ...attackList.map((a) => ({
      id: a.id,
      what: a.what,
      tgz: async () => gzip(buildTar([...(await chartBase('evil/')), ...a.members(cctx)])),
      targets: a.targets(cctx),
    })),
    {
      id: 'duplicate-chart-yaml',
      what: 'Chart.yaml twice, the second naming another chart',
      tgz: async () =>
        gzip(
          buildTar([
            ...(await chartBase('evil/')),
            member({ name: 'evil/Chart.yaml', data: 'apiVersion: v2\nname: other\nversion: 6.6.6\n' }),
          ]),
        ),
      targets: [],
    },
    {
      id: 'gzip-bomb',
      what: 'a 4 GiB file of zeros that compresses to a few MiB',
      tgz: () => zeroBombTgz('evil/', (smoke ? 1 : 4) * 2 ** 30),
      targets: [],
    },
  ];
  for (const c of smoke ? chartList.slice(0, 2) : chartList) {
    const cdir = join(dir, 'chart', c.id, 'a', 'b');
    await mkdir(cdir, { recursive: true });
    const tgz = join(cdir, 'evil-0.1.0.tgz');
    await writeFile(tgz, await c.tgz());
    const { env } = await ladingEnv();
    const img = await run(NODE, [BUILD_BIN, 'images', tgz, '--json'], { env, cwd: cdir, timeoutMs: 120_000 });
    const spec = join(cdir, 'lading.yaml');
    await writeFile(
      spec,
      'apiVersion: lading/v1\nname: evil\nversion: 1.0.0\ncharts:\n  - path: ./evil-0.1.0.tgz\n    images: none\n',
    );
    const output = join(cdir, 'out.tar');
    const { env: env2, home } = await ladingEnv();
    const cr = await run(
      NODE,
      [BUILD_BIN, 'create', '--spec', spec, '--output', output, '--unsigned', '--cache', join(home, 'cache')],
      {
        env: env2,
        cwd: cdir,
        timeoutMs: 120_000,
      },
    );
    const escaped = c.targets.filter((t) => existsSync(resolve(cdir, t)));
    const refusedBoth = img.code !== 0 && cr.code !== 0 && !existsSync(output);
    const ok = c.control ? img.code === 0 && cr.code === 0 : refusedBoth && escaped.length === 0;
    chartAttacks.push({
      id: `chart:${c.id}`,
      what: c.what,
      verifyExit: img.code,
      pushExit: cr.code,
      pushed: [],
      escaped,
      expected: c.control
        ? 'exit 0 from both'
        : 'non-zero exit from images and create, no bundle, nothing outside',
      ok,
      message: c.control ? '' : lastError(img),
    });
    log(
      `chart:${c.id}: images ${img.code}, create ${cr.code}, escaped ${escaped.length} ${ok ? 'ok' : 'PROBLEM'}`,
    );
    await rm(join(dir, 'chart', c.id), { recursive: true, force: true });
  }
  return { tamper, bundleAttacks, chartAttacks };
}

async function main(): Promise<void> {
  const m = await machine(workDir());
  const ctx = await setup();
  const killP = wants('kill-push') ? await killPush(ctx) : [];
  const killC = wants('kill-create') ? await killCreate(ctx) : [];
  const f = wants('faults') ? await faults(ctx) : [];
  let muts = await tamperCases(ctx);
  let atts = attacks();
  if (smoke) {
    const keep = new Set(['flip:layer blob', 'key:wrong']);
    muts = muts.filter((x) => keep.has(x.id));
    atts = atts.filter((a) => a.id === 'traversal');
  }
  const cases = wants('tamper')
    ? await runCases(ctx, muts, atts)
    : { tamper: [] as Case[], bundleAttacks: [] as Case[], chartAttacks: [] as Case[] };
  const all = [...cases.tamper, ...cases.bundleAttacks, ...cases.chartAttacks];
  const trust = wants('trust')
    ? await trustCases({
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
          run(
            NODE,
            [LOAD_BIN, 'push', bundle, '--key', ctx.pub, '--registry', host, '--plain-http', ...extra],
            {
              env,
            },
          ),
        registry,
        node: NODE,
        loadBin: LOAD_BIN,
        env: async () => (await ladingEnv()).env,
        lastError,
        log,
      })
    : [];
  // last: it adds .sig tags to the source registry, which create would then carry
  const prov = wants('provenance')
    ? await provenanceCases({
        src: ctx.src,
        images: ctx.images,
        dir: await fresh('provenance'),
        create: async (spec, output) => {
          const { env, home } = await ladingEnv();
          const ran = await run(
            NODE,
            [
              BUILD_BIN,
              'create',
              '--spec',
              spec,
              '--output',
              output,
              '--key',
              ctx.key,
              '--plain-http-host',
              ctx.src.host,
              '--cache',
              join(home, 'cache'),
            ],
            { env },
          );
          await rm(home, { recursive: true, force: true });
          return ran;
        },
        verifyImageKey: async (bundle, imageKey) => {
          const { env } = await ladingEnv();
          return run(NODE, [LOAD_BIN, 'verify', bundle, '--key', ctx.pub, '--image-key', imageKey], { env });
        },
        lastError,
        log,
      })
    : [];
  const result: Result = {
    generated: new Date().toISOString(),
    command,
    machine: m,
    setup: {
      images: ctx.images.length,
      bundleBytes: (await stat(ctx.clean)).size,
      tags: Object.keys(ctx.cleanState).length,
      cleanCreateMs: Math.round(ctx.createMs),
      cleanPushMs: Math.round(ctx.pushMs),
    },
    killPush: killP,
    killCreate: killC,
    faults: f,
    ...cases,
    provenance: prov,
    trust,
    summary: {
      'kill -9 push, re-run gives a clean registry': `${killP.filter((t) => t.ok).length}/${killP.length} (${pct(killP.filter((t) => t.ok).length, killP.length)})`,
      'kill -9 create: output path empty, re-run byte-identical': `${killC.filter((t) => t.ok).length}/${killC.length} (${pct(killC.filter((t) => t.ok).length, killC.length)})`,
      ...Object.fromEntries(
        rates.flatMap((rate) =>
          (['push', 'create'] as const).map((cmd) => {
            const rs = f.filter((x) => x.command === cmd && x.rate === rate);
            return [
              `${cmd} completes with ${rate * 100} % faults`,
              `${rs.filter((x) => x.completed).length}/${rs.length}`,
            ];
          }),
        ),
      ),
      'tamper cases refused (exit 3, nothing pushed)': `${cases.tamper.filter((c) => c.ok).length}/${cases.tamper.length}`,
      'bundle attacks refused (exit 3, nothing pushed or written outside)': `${cases.bundleAttacks.filter((c) => c.ok).length}/${cases.bundleAttacks.length}`,
      'chart attacks refused (and the control accepted)': `${cases.chartAttacks.filter((c) => c.ok).length}/${cases.chartAttacks.length}`,
      ...(trust.length
        ? {
            'swapped bundle: refused once verification has it open (exit 3, nothing served or pushed), else the older bundle verified and used throughout': `${trust.filter((c) => c.id.startsWith('swap:') && c.ok).length}/${trust.filter((c) => c.id.startsWith('swap:')).length}`,
            'hostile NAME.tar.sha256 refused (verify exit 3, fetch writes and replaces nothing else)': `${trust.filter((c) => c.id.startsWith('sums:') && c.ok).length}/${trust.filter((c) => c.id.startsWith('sums:')).length}`,
          }
        : {}),
      ...(prov.length
        ? {
            'upstream-signature attacks refused (create exit 3, no bundle; control and --image-key as expected)': `${prov.filter((c) => c.ok).length}/${prov.length}`,
          }
        : {}),
    },
  };
  await writeJson(jsonOut, result);
  log(`results: ${jsonOut}`);
  if (args.docs) {
    await writeJson(join(ROOT, 'docs', 'reliability.json'), result);
    await writeFile(
      join(ROOT, 'docs', 'reliability.md'),
      markdown(result) + (await keptNotes(join(ROOT, 'docs', 'reliability.md'))),
    );
    log('wrote docs/reliability.md and docs/reliability.json');
  }
  for (const [k, v] of Object.entries(result.summary)) console.log(`${k}: ${v}`);
  console.log(`${all.filter((c) => c.ok).length}/${all.length} tamper/attack cases as expected`);
}

(args['from-json'] ? fromJson(String(args['from-json'])) : main())
  .catch((err) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    process.exitCode = 1;
  })
  .finally(async () => {
    for (const s of stops) await s().catch(() => {});
  });
