/**
 * What a registry holds, read with plain HTTP (not Lading's client): every repository of the
 * catalog, every tag of each, and the digest each tag names (HEAD with every manifest media type).
 */
const ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

/** 'repo:tag' → digest, sorted by key. */
export type RegistryState = Record<string, string>;

export async function registryState(baseUrl: string): Promise<RegistryState> {
  const out: RegistryState = {};
  for (const repo of await catalog(baseUrl)) {
    const res = await fetch(`${baseUrl}/v2/${repo}/tags/list?n=1000`);
    if (res.status === 404) {
      await res.body?.cancel();
      continue; // a repository with blobs but no tag yet
    }
    if (res.status !== 200) throw new Error(`GET ${baseUrl}/v2/${repo}/tags/list: HTTP ${res.status}`);
    const tags = ((await res.json()) as { tags?: string[] | null }).tags ?? [];
    for (const tag of tags) {
      const h = await fetch(`${baseUrl}/v2/${repo}/manifests/${tag}`, {
        method: 'HEAD',
        headers: { accept: ACCEPT },
      });
      out[`${repo}:${tag}`] = h.headers.get('docker-content-digest') ?? `HTTP ${h.status}`;
    }
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}

/** Repositories in the catalog (empty when nothing was pushed). */
export async function catalog(baseUrl: string): Promise<string[]> {
  const res = await fetch(`${baseUrl}/v2/_catalog?n=1000`);
  if (res.status !== 200)
    throw new Error(`GET ${baseUrl}/v2/_catalog: HTTP ${res.status} ${await res.text()}`);
  const cat = (await res.json()) as { repositories?: string[] };
  return cat.repositories ?? [];
}

export function sameState(a: RegistryState, b: RegistryState): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export function stateDiff(want: RegistryState, got: RegistryState): string {
  const lines: string[] = [];
  for (const k of new Set([...Object.keys(want), ...Object.keys(got)])) {
    if (want[k] !== got[k]) lines.push(`${k}: want ${want[k] ?? 'absent'}, got ${got[k] ?? 'absent'}`);
  }
  return lines.join('; ');
}
