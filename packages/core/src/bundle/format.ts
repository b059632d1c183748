/**
 * The bundle format (docs/bundle-format.md, a contract): a POSIX tar holding an OCI image layout at its
 * root, metadata members first, then files/, then every blob once.
 */

export const Member = {
  ociLayout: 'oci-layout',
  manifest: 'lading.json',
  sums: 'SHA256SUMS',
  signature: 'SHA256SUMS.sig',
  index: 'index.json',
  sbom: 'sbom.cdx.json',
} as const;

/** Metadata members in the order they appear at the start of the tar. */
export const METADATA_ORDER: readonly string[] = [
  Member.ociLayout,
  Member.manifest,
  Member.sums,
  Member.signature,
  Member.index,
  Member.sbom,
];

export const FILES_DIR = 'files/';
export const BLOBS_DIR = 'blobs/';

export const OCI_LAYOUT_CONTENT = '{"imageLayoutVersion":"1.0.0"}';

/** Charts are referenced in index.json as `charts/<name>:<version>`. */
export function chartRefName(name: string, version: string): string {
  return `charts/${name}:${version}`;
}

/** Split bundles: NAME.tar.000, NAME.tar.001, … plus NAME.tar.sha256 over the parts. */
export function partName(bundleFile: string, i: number): string {
  return `${bundleFile}.${String(i).padStart(3, '0')}`;
}

/**
 * The one rule for part names: `NAME.000`, `NAME.001`, … — three or more digits (a split into
 * more than 1000 parts widens the number). Returns the base and the number, or undefined.
 */
export function parsePartName(name: string): { base: string; index: number; width: number } | undefined {
  const m = /^(.*)\.(\d{3,})$/.exec(name);
  if (!m) return undefined;
  return { base: m[1] as string, index: Number(m[2]), width: (m[2] as string).length };
}

/**
 * The parts of `base` among `names` (files in a folder, keys under a prefix), numbered with the
 * same width: `parts` is the run from 0 without a gap, `missing` the numbers absent below the
 * highest found (as names), `afterGap` the names found past the first missing one. Callers decide
 * whether a gap is fatal (opening for reading) or a problem to report (verify).
 */
export function collectParts(
  base: string,
  width: number,
  names: Iterable<string>,
): { parts: string[]; missing: string[]; afterGap: string[] } {
  const found = new Map<number, string>();
  for (const n of names) {
    const p = parsePartName(n);
    if (p && p.base === base && p.width === width) found.set(p.index, n);
  }
  const parts: string[] = [];
  const missing: string[] = [];
  const afterGap: string[] = [];
  const max = found.size === 0 ? -1 : Math.max(...found.keys());
  for (let i = 0; i <= max; i++) {
    const n = found.get(i);
    if (n === undefined) missing.push(`${base}.${String(i).padStart(width, '0')}`);
    else (missing.length > 0 ? afterGap : parts).push(n);
  }
  return { parts, missing, afterGap };
}

export function partsChecksumName(bundleFile: string): string {
  return `${bundleFile}.sha256`;
}

/** `NAME.tar.sha256.sig`: the signature over the checksum file (same key and format as SHA256SUMS.sig). */
export function partsChecksumSignatureName(checksumFile: string): string {
  return `${checksumFile}.sig`;
}

/** Whether a member path is covered by SHA256SUMS (all but the signature itself). */
export function isSummed(path: string): boolean {
  return path !== Member.signature && path !== Member.sums;
}
