import { METADATA_ORDER, Member } from '../format.ts';
import type { BundleSourceKind } from '../source.ts';
import { parseSums } from '../sums.ts';
import type { MemberTable } from './checks-members.ts';
import type { ProblemList } from './problems.ts';

/** Every metadata member present and, in a tar, in contract order (a directory has no order). */
export function checkMetadataMembers(
  table: MemberTable,
  kind: BundleSourceKind,
  problems: ProblemList,
): void {
  const { members } = table;
  for (const m of METADATA_ORDER) {
    if (!members.has(m)) problems.add(m, 'missing', `required metadata member ${m} is not in the bundle`);
  }
  if (kind === 'directory') return;
  // Relative order of the metadata members present (one missing, e.g. the signature of an
  // unsigned bundle, is reported as missing, not as every later one out of order).
  const present = METADATA_ORDER.filter((m) => members.has(m));
  present.forEach((want, i) => {
    const at = members.get(want)?.position;
    if (at !== undefined && at !== i) {
      problems.add(
        want,
        'order',
        `must be member #${i + 1} (metadata order: ${METADATA_ORDER.join(', ')}), found at #${at + 1}`,
      );
    }
  });
}

/**
 * SHA256SUMS against every member: each listed with its sha256, nothing listed missing (unless
 * hashing stopped before it, or the archive ends inside it). A content mismatch is added to
 * `table.badContent`.
 */
export function checkSums(
  table: MemberTable,
  hashing: { stopped: string | undefined; truncated: ReadonlySet<string> },
  problems: ProblemList,
): void {
  const sumsBytes = table.meta.get(Member.sums);
  if (!sumsBytes) return;
  let sums: Map<string, string>;
  try {
    sums = new Map(parseSums(sumsBytes).map((e) => [e.path, e.hex]));
  } catch (err) {
    problems.add(Member.sums, 'schema', (err as Error).message);
    return;
  }
  for (const s of [Member.sums, Member.signature]) {
    if (sums.has(s)) problems.add(Member.sums, 'schema', `lists ${s}, which it cannot cover`);
  }
  for (const info of [...table.members.values(), ...table.duplicates]) {
    if (info.name === Member.sums || info.name === Member.signature) continue;
    const want = sums.get(info.name);
    if (want === undefined) {
      problems.add(info.name, 'extra', `not listed in ${Member.sums}`);
    } else if (want !== info.hex) {
      table.badContent.add(info.name);
      problems.add(info.name, 'digest', `sha256 is ${info.hex}, ${Member.sums} says ${want}`);
    }
  }
  for (const name of sums.keys()) {
    if (name === Member.sums || name === Member.signature) continue;
    // After a stop, what was not reached is not known to be missing.
    if (hashing.stopped === undefined && !table.members.has(name) && !hashing.truncated.has(name)) {
      problems.add(name, 'missing', `listed in ${Member.sums} but not in the bundle`);
    }
  }
}
