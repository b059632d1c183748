/**
 * `verify:` image globs, matched against full normalised references
 * (`docker.io/library/nginx:1.27.3`, `ghcr.io/acme/api@sha256:…`): `*` matches within one path
 * segment, `**` across segments, `?` one character. A glob whose last segment names no tag or
 * digest also matches every tag and digest of the repositories it matches
 * (`ghcr.io/acme/api` matches `ghcr.io/acme/api:1.0`).
 */

function toRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        re += '.*';
        i++;
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  const last = glob.slice(glob.lastIndexOf('/') + 1);
  const open = !last.includes(':') && !last.includes('@') && !glob.endsWith('*');
  return new RegExp(`^${re}${open ? '(?:[:@].*)?' : ''}$`);
}

/** Whether the normalised reference `ref` matches `glob`. */
export function matchesImageGlob(glob: string, ref: string): boolean {
  return toRegExp(glob).test(ref);
}

/** Why a glob cannot match any normalised reference (no registry host), or undefined. */
export function imageGlobProblem(glob: string): string | undefined {
  const first = glob.split('/')[0] ?? '';
  if (
    !glob.includes('/') ||
    !(first.includes('.') || first.includes(':') || first === 'localhost' || first.includes('*'))
  ) {
    return `"${glob}" does not start with a registry host; globs match full normalised references (docker.io/library/nginx:*, ghcr.io/acme/**)`;
  }
  return undefined;
}
