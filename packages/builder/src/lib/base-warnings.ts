import type { BaseBundle } from './since.ts';
import type { Spec } from './spec/index.ts';

/**
 * The warnings `create --since OLD` goes on with: a base that does not check out (base-check.ts),
 * and a base with the name and version of the bundle being built (a rebuild pointed at itself,
 * or the wrong file).
 */
export function baseWarnings(path: string, base: BaseBundle, spec: Pick<Spec, 'name' | 'version'>): string[] {
  const out: string[] = [];
  if (base.problems.length > 0) {
    out.push(
      `--since ${path} does not check out: ${base.problems.join('; ')}. Only its blob list is used (nothing is copied from it); lading-load push stops, naming the base, if a blob left out is not at the registry. Build against the copy the site loaded (lading-load verify it)`,
    );
  }
  if (base.name === spec.name && base.version === spec.version) {
    out.push(
      `--since ${path} is ${base.name} ${base.version}, the same name and version as the bundle being built: the base is the previous release the site loaded — check the path, or give this release a new version`,
    );
  }
  return out;
}
