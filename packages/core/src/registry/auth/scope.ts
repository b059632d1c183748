/**
 * Token scopes (Docker token spec): `repository:<name>:<actions>` and `registry:catalog:*`.
 * Scopes for the same resource merge their actions; the merged, sorted list is a cache key.
 */
export function repositoryScope(repository: string, actions: readonly string[]): string {
  return `repository:${repository}:${[...actions].join(',')}`;
}

export const CATALOG_SCOPE = 'registry:catalog:*';

/** Merge scopes: one entry per resource type+name, union of actions, sorted. */
export function mergeScopes(...lists: ReadonlyArray<readonly string[] | string | undefined>): string[] {
  const byResource = new Map<string, Set<string>>();
  for (const list of lists) {
    if (list === undefined) continue;
    const items = typeof list === 'string' ? list.split(' ') : list;
    for (const raw of items) {
      const s = raw.trim();
      if (!s) continue;
      const last = s.lastIndexOf(':');
      if (last < 0) {
        if (!byResource.has(s)) byResource.set(s, new Set());
        continue;
      }
      const resource = s.slice(0, last);
      const actions = s
        .slice(last + 1)
        .split(',')
        .filter(Boolean);
      const set = byResource.get(resource) ?? new Set<string>();
      for (const a of actions) set.add(a);
      byResource.set(resource, set);
    }
  }
  return [...byResource.entries()]
    .map(([r, a]) => (a.size > 0 ? `${r}:${[...a].sort().join(',')}` : r))
    .sort();
}
