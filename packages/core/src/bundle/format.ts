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

export function partsChecksumName(bundleFile: string): string {
  return `${bundleFile}.sha256`;
}

/** Whether a member path is covered by SHA256SUMS (all but the signature itself). */
export function isSummed(path: string): boolean {
  return path !== Member.signature && path !== Member.sums;
}
