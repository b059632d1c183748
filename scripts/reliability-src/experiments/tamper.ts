/**
 * The tamper matrix: one change to the clean bundle per case (a bit flipped, a member cut, dropped,
 * added or moved, the signature replaced, SHA256SUMS rewritten), each checked with verify and push.
 */
import { randomBytes, sign } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Case } from '../lib/report.ts';
import { buildTar, type Member, member, memberName, parseTar } from '../lib/tar.ts';
import type { RefusalCheck } from './check.ts';
import { type Ctx, sha256 } from './context.ts';

export type Mutation = { id: string; what: string; make: () => Buffer; key?: 'other' };

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
  return members
    .filter((m) => memberName(m) !== 'SHA256SUMS' && memberName(m) !== 'SHA256SUMS.sig')
    .map((m) => `${sha256(m.data)}  ${memberName(m)}\n`)
    .join('');
}

export async function tamperCases(ctx: Ctx): Promise<Mutation[]> {
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

/** Each mutation written to DIR/tampered.tar and checked (exit 3 from verify and push, nothing pushed). */
export async function runTamper(
  ctx: Ctx,
  check: RefusalCheck,
  muts: Mutation[],
  dir: string,
): Promise<Case[]> {
  const tamper: Case[] = [];
  for (const m of muts) {
    const f = join(dir, 'tampered.tar');
    await writeFile(f, m.make());
    tamper.push(await check(m.id, m.what, f, m.key === 'other' ? ctx.otherPub : ctx.pub, [], dir));
    await rm(f, { force: true });
  }
  return tamper;
}
