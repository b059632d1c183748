/**
 * The archive attack corpus against the bundle: each hostile member (traversal, absolute path,
 * links, devices, a lying size) put right after the metadata, checked with verify and push; and,
 * outside the smoke run, duplicate names.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Case } from '../lib/report.ts';
import { buildTar, type Member, member, memberName, parseTar } from '../lib/tar.ts';
import type { RefusalCheck } from './check.ts';
import type { Ctx } from './context.ts';

export interface Attack {
  id: string;
  what: string;
  /** Extra members, and whether to replace the bundle's (or chart's) member of the same name. */
  members: (ctx: AttackCtx) => (Member & { declaredSize?: number })[];
  /** Paths (absolute, or relative to the process's working folder) that must not exist afterwards. */
  targets: (ctx: AttackCtx) => string[];
}

export interface AttackCtx {
  outside: string;
  prefix: string;
}

export function attacks(): Attack[] {
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

export async function runBundleAttacks(
  ctx: Ctx,
  check: RefusalCheck,
  attackList: Attack[],
  dir: string,
  outside: string,
): Promise<Case[]> {
  const { smoke } = ctx.opts;
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
  return bundleAttacks;
}
