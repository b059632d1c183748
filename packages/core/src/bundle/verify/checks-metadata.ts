import type { ImageIndex } from '../../model/index.ts';
import { Member, OCI_LAYOUT_CONTENT } from '../format.ts';
import type { LadingJson } from '../lading-json.ts';
import { parseIndexJson, parseLadingJson } from '../reader.ts';
import type { ProblemList } from './problems.ts';

/** The metadata documents, parsed where they are valid. */
export interface MetadataDocuments {
  lading: LadingJson | undefined;
  /** lading.json as plain JSON, for its name and version when it does not validate. */
  ladingRaw: { name?: unknown; version?: unknown } | undefined;
  index: ImageIndex | undefined;
}

/** Parse and check oci-layout, lading.json, index.json and the SBOM. */
export function checkMetadataDocuments(
  meta: ReadonlyMap<string, Buffer>,
  problems: ProblemList,
): MetadataDocuments {
  const layout = meta.get(Member.ociLayout);
  if (layout) {
    let okLayout = false;
    try {
      okLayout =
        JSON.parse(layout.toString('utf8')).imageLayoutVersion ===
        JSON.parse(OCI_LAYOUT_CONTENT).imageLayoutVersion;
    } catch {}
    if (!okLayout) problems.add(Member.ociLayout, 'schema', `is not ${OCI_LAYOUT_CONTENT}`);
  }
  let lading: LadingJson | undefined;
  let ladingRaw: { name?: unknown; version?: unknown } | undefined;
  const ladingBytes = meta.get(Member.manifest);
  if (ladingBytes) {
    try {
      ladingRaw = JSON.parse(ladingBytes.toString('utf8'));
    } catch {}
    try {
      lading = parseLadingJson(ladingBytes);
    } catch (err) {
      problems.add(Member.manifest, 'schema', (err as Error).message);
    }
  }
  let index: ImageIndex | undefined;
  const indexBytes = meta.get(Member.index);
  if (indexBytes) {
    try {
      index = parseIndexJson(indexBytes);
    } catch (err) {
      problems.add(Member.index, 'schema', (err as Error).message);
    }
  }
  const sbom = meta.get(Member.sbom);
  if (sbom) {
    let okSbom = false;
    try {
      okSbom = JSON.parse(sbom.toString('utf8')).bomFormat === 'CycloneDX';
    } catch {}
    if (!okSbom) problems.add(Member.sbom, 'schema', 'is not a CycloneDX JSON document');
  }
  return { lading, ladingRaw, index };
}
