/**
 * The same attack corpus inside a Helm chart (plus a duplicate Chart.yaml and a gzip bomb), given to
 * `lading-build images CHART.tgz` and to `create` with the chart as a local path: both must refuse,
 * nothing outside; a valid chart (the control) must be accepted.
 */
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { buffer as streamBuffer } from 'node:stream/consumers';
import { createGzip } from 'node:zlib';
import { BUILD_BIN, ladingEnv, log, NODE } from '../../bench-src/lib/common.ts';
import { lastError, run } from '../lib/proc.ts';
import type { Case } from '../lib/report.ts';
import { buildTar, type Member, member } from '../lib/tar.ts';
import type { Attack, AttackCtx } from './bundle-attacks.ts';

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

export async function runChartAttacks(
  attackList: Attack[],
  dir: string,
  outside: string,
  smoke: boolean,
): Promise<Case[]> {
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
  return chartAttacks;
}
