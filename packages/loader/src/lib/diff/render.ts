import { formatBytes } from '@lading/core/util';
import type { BundleDiff, DiffSide, SetChange } from './model.ts';

/** `sha256:0123456789ab` — enough to tell digests apart on screen; --json has them whole. */
export function shortDigest(d: string): string {
  const i = d.indexOf(':');
  return i < 0 ? d.slice(0, 12) : d.slice(0, i + 13);
}

function sideLine(label: string, s: DiffSide): string {
  const base = s.since ? `, differential on ${s.since.name} ${s.since.version}` : '';
  const verified = s.verified
    ? `verified (key ${shortDigest(s.keyFingerprint ?? '')})`
    : 'NOT verified (no --key)';
  return `${label} ${s.name} ${s.version}  ${s.bundle}  ${verified}${base}`;
}

function count(parts: Array<[number, string]>): string {
  const shown = parts.filter(([n]) => n > 0).map(([n, w]) => `${n} ${w}`);
  return shown.length ? shown.join(', ') : 'no change';
}

function section<T>(
  out: string[],
  title: string,
  sec: { recorded: { old: boolean; new: boolean }; changes: SetChange<T>[] },
  fmt: (t: T) => string,
): void {
  const r = sec.recorded;
  const note =
    !r.old && !r.new
      ? 'neither bundle records them'
      : !r.old
        ? 'OLD records none'
        : !r.new
          ? 'NEW records none'
          : '';
  out.push(
    '',
    `${title}: ${sec.changes.length ? `${sec.changes.length} image(s) changed` : 'no change'}${note ? ` (${note})` : ''}`,
  );
  for (const c of sec.changes) {
    for (const a of c.added) out.push(`  + ${c.ref}  ${fmt(a)}`);
    for (const a of c.removed) out.push(`  - ${c.ref}  ${fmt(a)}`);
  }
}

/** The human view of a diff: one section per kind, `+` added, `-` removed, `~` changed. */
export function formatDiffText(d: BundleDiff): string {
  const out: string[] = [];
  out.push(sideLine('OLD', d.old));
  out.push(sideLine('NEW', d.new));
  if (d.identical) {
    out.push('', 'The bundles are identical (same SHA256SUMS).');
    return out.join('\n');
  }
  if (d.new.since) {
    out.push(
      d.newBasedOnOld
        ? 'NEW is a differential bundle based on OLD.'
        : `NEW is a differential bundle based on ${d.new.since.name} ${d.new.since.version} (${shortDigest(d.new.since.digest)}), not on OLD.`,
    );
  }
  if (d.platforms.added.length || d.platforms.removed.length) {
    out.push('', 'Platforms');
    for (const p of d.platforms.added) out.push(`  + ${p}`);
    for (const p of d.platforms.removed) out.push(`  - ${p}`);
  }

  const im = d.images;
  out.push(
    '',
    `Images: ${count([
      [im.added.length, 'added'],
      [im.removed.length, 'removed'],
      [im.moved.length, 'moved'],
    ])}${im.unchanged ? ` (${im.unchanged} unchanged)` : ''}`,
  );
  const up = (u: string, b: string) => (u === b ? '' : ` (upstream ${shortDigest(u)})`);
  for (const i of im.added)
    out.push(`  + ${i.ref}  ${shortDigest(i.digest)}${up(i.upstreamDigest, i.digest)}`);
  for (const i of im.removed)
    out.push(`  - ${i.ref}  ${shortDigest(i.digest)}${up(i.upstreamDigest, i.digest)}`);
  for (const m of im.moved) {
    out.push(`  ~ ${m.ref}  ${shortDigest(m.old.digest)} → ${shortDigest(m.new.digest)}`);
    out.push(
      m.upstreamSame
        ? `      upstream unchanged (${shortDigest(m.old.upstreamDigest)}): the bundled index differs`
        : `      upstream ${shortDigest(m.old.upstreamDigest)} → ${shortDigest(m.new.upstreamDigest)}`,
    );
    const pa = m.new.platforms.filter((p) => !m.old.platforms.includes(p));
    const pr = m.old.platforms.filter((p) => !m.new.platforms.includes(p));
    if (pa.length || pr.length)
      out.push(`      platforms ${[...pa.map((p) => `+${p}`), ...pr.map((p) => `-${p}`)].join(' ')}`);
  }

  const ch = d.charts;
  out.push(
    '',
    `Charts: ${count([
      [ch.added.length, 'added'],
      [ch.removed.length, 'removed'],
      [ch.changed.length, 'changed'],
    ])}${ch.unchanged ? ` (${ch.unchanged} unchanged)` : ''}`,
  );
  for (const c of ch.added) out.push(`  + ${c.name} ${c.version}`);
  for (const c of ch.removed) out.push(`  - ${c.name} ${c.version}`);
  for (const c of ch.changed) {
    out.push(
      c.old.version === c.new.version
        ? `  ~ ${c.name} ${c.new.version}  same version, other content: ${shortDigest(c.old.digest)} → ${shortDigest(c.new.digest)}`
        : `  ~ ${c.name} ${c.old.version} → ${c.new.version}`,
    );
  }

  const r = d.releases;
  out.push(
    '',
    `Releases: ${count([
      [r.added.length, 'added'],
      [r.removed.length, 'removed'],
      [r.changed.length, 'changed'],
      [r.values.length, 'values file(s) changed'],
    ])}${r.unchanged ? ` (${r.unchanged} unchanged)` : ''}`,
  );
  for (const x of r.added)
    out.push(`  + ${x.name}  chart ${x.chart}${x.namespace ? `, namespace ${x.namespace}` : ''}`);
  for (const x of r.removed) out.push(`  - ${x.name}  chart ${x.chart}`);
  for (const x of r.changed) for (const c of x.changes) out.push(`  ~ ${x.name}  ${c}`);
  for (const v of r.values) {
    if (v.patch)
      out.push(
        '',
        ...v.patch
          .trimEnd()
          .split('\n')
          .map((l) => `  ${l}`),
      );
    else out.push(`  ~ ${v.path} (${v.status}): ${v.note ?? ''}`);
  }

  const f = d.files;
  out.push(
    '',
    `Files: ${count([
      [f.added.length, 'added'],
      [f.removed.length, 'removed'],
      [f.changed.length, 'changed'],
    ])}${f.unchanged ? ` (${f.unchanged} unchanged)` : ''}`,
  );
  for (const x of f.added) out.push(`  + ${x.path}  ${formatBytes(x.size)}`);
  for (const x of f.removed) out.push(`  - ${x.path}`);
  for (const x of f.changed)
    out.push(`  ~ ${x.path}  ${formatBytes(x.old.size)} → ${formatBytes(x.new.size)}`);

  section(
    out,
    'Supply-chain extras',
    d.extras,
    (e) => `${e.kind} ${shortDigest(e.digest)}${e.tag ? ` (${e.tag})` : ''}`,
  );
  section(
    out,
    'Upstream signatures',
    d.signatures,
    (s) => `${s.scheme} over ${shortDigest(s.digest)} by key ${shortDigest(s.key)}`,
  );

  const b = d.bytes;
  out.push(
    '',
    `Bytes: NEW holds ${b.newBlobs} blob(s), ${formatBytes(b.newBytes)}, that OLD does not (of ${b.totalBlobs}, ${formatBytes(b.totalBytes)}): what a differential bundle would carry.`,
  );
  return out.join('\n');
}
