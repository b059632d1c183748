import { InvalidInputError, parseReference, type Reference } from '@lading/core';

/** `--registry HOST[:PORT][/PREFIX]`, parsed. */
export interface RegistryTarget {
  /** `harbor.local`, `127.0.0.1:5000`, `[::1]:5000`. */
  host: string;
  /** `airgap` or `team/airgap`; empty when none. */
  prefix: string;
}

export class RegistryTargetError extends InvalidInputError {
  override readonly code = 'INVALID_REGISTRY';
}

/** Parse `--registry`. A scheme is not accepted: TLS is on unless `--insecure`. */
export function parseRegistryTarget(value: string): RegistryTarget {
  const v = value.trim().replace(/\/+$/, '');
  if (/^[a-z]+:\/\//i.test(v)) {
    throw new RegistryTargetError(`--registry "${value}" has a scheme`, {
      hint: 'give HOST[:PORT][/PREFIX], e.g. harbor.local/airgap; TLS is used unless --insecure is given',
    });
  }
  const slash = v.indexOf('/', v.startsWith('[') ? v.indexOf(']') : 0);
  const host = slash < 0 ? v : v.slice(0, slash);
  const prefix = slash < 0 ? '' : v.slice(slash + 1);
  // Validate by building a reference from the parts: Docker's grammar decides.
  try {
    const probe = parseReference(`${host}/${prefix ? `${prefix}/` : ''}x`);
    if (probe.registry !== host) throw new Error('host not recognised as a registry');
  } catch {
    throw new RegistryTargetError(`--registry "${value}" is not HOST[:PORT][/PREFIX]`, {
      hint: 'e.g. harbor.local, registry.local:5000/airgap, [::1]:5000; the prefix is lowercase path components',
    });
  }
  return { host, prefix };
}

export function formatRegistryTarget(t: RegistryTarget): string {
  return t.prefix ? `${t.host}/${t.prefix}` : t.host;
}

/**
 * Where a source image lands (README.md, image paths at the target): the source host is dropped and the prefix put in
 * front: `docker.io/library/nginx:1.27.3` → `harbor.local/airgap/library/nginx:1.27.3`.
 */
export function targetRepository(target: RegistryTarget, source: Reference): string {
  return target.prefix ? `${target.prefix}/${source.repository}` : source.repository;
}

/** Charts land under `PREFIX/charts/<name>`. */
export function chartRepository(target: RegistryTarget, name: string): string {
  return target.prefix ? `${target.prefix}/charts/${name}` : `charts/${name}`;
}

export class PathCollisionError extends InvalidInputError {
  override readonly code = 'PATH_COLLISION';
  readonly collisions: Array<{ path: string; sources: string[] }>;
  constructor(collisions: Array<{ path: string; sources: string[] }>) {
    super(
      `images from different sources would land on the same path: ${collisions
        .map((c) => `${c.path} ← ${c.sources.join(', ')}`)
        .join('; ')}`,
      { hint: 'push these images to different registries or prefixes; nothing was written' },
    );
    this.collisions = collisions;
  }
}

/**
 * Map every source reference to its target path and stop, before anything is written, when two
 * different source repositories would land on the same target repository.
 */
export function planTargetPaths(
  target: RegistryTarget,
  sources: readonly string[],
): Map<string, { reference: Reference; repository: string }> {
  const out = new Map<string, { reference: Reference; repository: string }>();
  const bySourceRepo = new Map<string, Set<string>>();
  for (const s of sources) {
    const reference = parseReference(s);
    const repository = targetRepository(target, reference);
    out.set(s, { reference, repository });
    const set = bySourceRepo.get(repository) ?? new Set<string>();
    set.add(`${reference.registry}/${reference.repository}`);
    bySourceRepo.set(repository, set);
  }
  const collisions = [...bySourceRepo]
    .filter(([, set]) => set.size > 1)
    .map(([path, set]) => ({
      path: `${formatRegistryTarget(target).split('/')[0]}/${path}`,
      sources: [...set].sort(),
    }));
  if (collisions.length > 0) throw new PathCollisionError(collisions);
  return out;
}
