import { InvalidInputError } from '@lading/core';

/** An image of the spec that has none of the platforms its filter asks for. */
export interface PlatformMiss {
  /** The full reference: `registry.example.com/acme/api:1.0`. */
  ref: string;
  /** Where it was asked for: `lading.yaml:12`, `chart podinfo, values worker.image`. */
  where: string[];
  wanted: string[];
  /** The platforms the image has (empty when it carries no platform information). */
  available: string[];
}

function line(m: PlatformMiss): string {
  const has = m.available.length > 0 ? m.available.join(', ') : 'no platform information';
  return `${m.ref} has no image for ${m.wanted.join(', ')}; it has ${has}${m.where.length > 0 ? ` — ${m.where.join('; ')}` : ''}`;
}

/** The per-image form of the spec that fixes it: the image with its own `platforms`. */
function specForm(misses: readonly PlatformMiss[]): string {
  const items = misses.map((m) =>
    m.available.length > 0
      ? `      - ref: ${m.ref}\n        platforms: [${m.available.join(', ')}]`
      : `      # ${m.ref}: its index names no platforms, so no filter keeps it; remove platforms: to take it`,
  );
  return `give ${misses.length === 1 ? 'the image its' : 'each image its'} own platforms in the spec's images: (it overrides the top-level platforms:; a chart's image listed there takes it too), e.g.\n    images:\n${items.join('\n')}`;
}

/**
 * Images whose platform filter keeps nothing (exit 2): every one of them, with the full reference,
 * the platforms it has, where it was asked for, and the spec lines that fix it.
 */
export class ImagePlatformError extends InvalidInputError {
  override readonly code = 'PLATFORM_NOT_FOUND';
  readonly images: PlatformMiss[];
  constructor(misses: PlatformMiss[]) {
    super(
      misses.length === 1
        ? line(misses[0] as PlatformMiss)
        : `${misses.length} images have none of the platforms asked for:\n${misses.map((m) => `  ${line(m)}`).join('\n')}`,
      { hint: specForm(misses) },
    );
    this.images = misses;
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), images: this.images };
  }
}
