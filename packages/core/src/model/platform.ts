import { InvalidInputError } from '../errors/index.ts';

/** OCI platform (image-index.md). */
export interface Platform {
  architecture: string;
  os: string;
  'os.version'?: string;
  'os.features'?: string[];
  variant?: string;
  features?: string[];
}

/** Parse `os/arch[/variant]`, e.g. `linux/arm64/v8`. */
export function parsePlatform(value: string): Platform {
  const parts = value.split('/');
  if (
    parts.length < 2 ||
    parts.length > 3 ||
    parts.some((p) => p.length === 0 || !/^[a-z0-9._-]+$/i.test(p))
  ) {
    throw new InvalidInputError(`invalid platform "${value}"`, {
      hint: 'write a platform as os/architecture[/variant], e.g. linux/amd64 or linux/arm64/v8',
    });
  }
  const [os, architecture, variant] = parts as [string, string, string | undefined];
  return variant ? { os, architecture, variant } : { os, architecture };
}

export function formatPlatform(p: Platform): string {
  return p.variant ? `${p.os}/${p.architecture}/${p.variant}` : `${p.os}/${p.architecture}`;
}

/** containerd's normalisation: aliases of architectures and their default variants. */
export function normalizePlatform(p: Platform): Platform {
  let os = p.os.toLowerCase();
  let architecture = p.architecture.toLowerCase();
  let variant = p.variant?.toLowerCase();
  if (os === 'macos') os = 'darwin';
  switch (architecture) {
    case 'i386':
      architecture = '386';
      variant = undefined;
      break;
    case 'x86_64':
    case 'x86-64':
    case 'amd64':
      architecture = 'amd64';
      if (variant === 'v1') variant = undefined;
      break;
    case 'aarch64':
    case 'arm64':
      architecture = 'arm64';
      if (variant === '8' || variant === 'v8') variant = undefined;
      break;
    case 'armhf':
      architecture = 'arm';
      variant = 'v7';
      break;
    case 'armel':
      architecture = 'arm';
      variant = 'v6';
      break;
    case 'arm':
      if (variant === undefined || variant === '7') variant = 'v7';
      else if (variant === '5' || variant === '6' || variant === '8') variant = `v${variant}`;
      break;
  }
  const out: Platform = { ...p, os, architecture };
  if (variant) out.variant = variant;
  else delete out.variant;
  return out;
}

/**
 * Whether `have` (an index entry) satisfies `want` (a filter). `linux/arm64` matches
 * `linux/arm64/v8`; a filter without a variant matches every variant of that architecture.
 */
export function platformMatches(want: Platform, have: Platform | undefined): boolean {
  if (!have) return false;
  const w = normalizePlatform(want);
  const h = normalizePlatform(have);
  if (w.os !== h.os || w.architecture !== h.architecture) return false;
  if (want.variant === undefined) return true;
  return w.variant === h.variant;
}

export function matchesAny(wants: readonly Platform[], have: Platform | undefined): boolean {
  return wants.some((w) => platformMatches(w, have));
}
