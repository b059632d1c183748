import { parseReference } from '@lading/core';

/** Distinct source registries and repositories of the bundle's images, sorted. */
export function sourceRegistries(images: readonly string[]): string[] {
  return [...new Set(images.map((i) => parseReference(i).registry))].sort();
}

export function sourceRepositories(
  images: readonly string[],
): Array<{ registry: string; repository: string }> {
  const seen = new Map<string, { registry: string; repository: string }>();
  for (const i of images) {
    const r = parseReference(i);
    seen.set(`${r.registry}/${r.repository}`, { registry: r.registry, repository: r.repository });
  }
  return [...seen.values()].sort((a, b) =>
    `${a.registry}/${a.repository}`.localeCompare(`${b.registry}/${b.repository}`),
  );
}

/** The upstream endpoint of a registry host, as containerd names it. */
export function upstreamServer(registry: string): string {
  return registry === 'docker.io' ? 'https://registry-1.docker.io' : `https://${registry}`;
}

/** TOML basic string. */
export function tomlString(s: string): string {
  return JSON.stringify(s);
}

/** A bundle name made safe for file and Kubernetes object names: lowercase, [a-z0-9.-]. */
export function safeName(name: string): string {
  const s = name
    .toLowerCase()
    .replace(/[^a-z0-9.-]+/g, '-')
    .replace(/^[-.]+|[-.]+$/g, '');
  return s === '' ? 'bundle' : s;
}
