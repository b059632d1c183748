import type { Digest } from '../../digest/index.ts';
import { FILES_DIR, Member } from '../format.ts';
import type { LadingJson } from '../lading-json.ts';
import type { MemberInfo } from './checks-members.ts';
import type { ProblemList } from './problems.ts';
import type { FileReport } from './report.ts';

/**
 * The extra files: each lading.json lists is in the bundle with its digest and size (unless
 * hashing stopped before it). The report lists every file, listed or found, with its problems.
 */
export function checkFiles(
  lading: LadingJson | undefined,
  members: ReadonlyMap<string, MemberInfo>,
  stopped: string | undefined,
  problems: ProblemList,
): FileReport[] {
  const fileNames = new Set<string>([...members.keys()].filter((n) => n.startsWith(FILES_DIR)));
  for (const f of lading?.files ?? []) {
    const candidates = f.path.startsWith(FILES_DIR) ? [f.path] : [`${FILES_DIR}${f.path}`, f.path];
    const found = candidates.map((c) => members.get(c)).find((m) => m !== undefined);
    const name = found?.name ?? (candidates[0] as string);
    fileNames.add(name);
    if (!found) {
      if (stopped === undefined)
        problems.add(name, 'missing', `listed in ${Member.manifest} but not in the bundle`);
    } else if (found.hex !== (f.digest as Digest).slice(f.digest.indexOf(':') + 1) || found.size !== f.size) {
      problems.add(
        name,
        'digest',
        `does not match its entry in ${Member.manifest} (${f.digest}, ${f.size} bytes)`,
      );
    }
  }
  return [...fileNames].sort().map((path) => {
    const p = problems.about(path);
    return { path, ok: p.length === 0, problems: p };
  });
}
