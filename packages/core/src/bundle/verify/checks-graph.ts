import type { Digest } from '../../digest/index.ts';
import {
  Annotation,
  type Descriptor,
  type ImageIndex,
  isManifestOrIndexType,
  MAX_MANIFEST_BYTES,
  MediaType,
  type ParsedManifest,
  successors,
  walkDescriptors,
} from '../../model/index.ts';
import { Member } from '../format.ts';
import type { LadingJson } from '../lading-json.ts';
import { blobMemberName } from '../reader.ts';
import type { MemberInfo } from './checks-members.ts';
import type { ProblemList } from './problems.ts';
import type { ArtifactReport } from './report.ts';

export interface GraphInput {
  index: ImageIndex | undefined;
  lading: LadingJson | undefined;
  members: ReadonlyMap<string, MemberInfo>;
  /** The manifests and indexes of the bundle, parsed, by digest. */
  manifests: ReadonlyMap<string, ParsedManifest>;
  badContent: ReadonlySet<string>;
  truncated: ReadonlySet<string>;
  /** Hashing stopped before the end: the graph is not checked. */
  stopped: string | undefined;
}

export interface GraphReport {
  images: ArtifactReport[];
  charts: ArtifactReport[];
  /** Differential bundles: blobs referenced but left out, expected at the target. */
  expectedAtTarget: string[];
}

/**
 * The content graph of every image and chart in index.json: each node present with the size its
 * descriptor says (or left out by a differential bundle), each manifest and index readable; the
 * carried supply-chain artifacts of each image; every image and chart of lading.json in index.json.
 */
export async function checkGraph(g: GraphInput, problems: ProblemList): Promise<GraphReport> {
  const { members, manifests, badContent, truncated, lading } = g;
  const omitted = new Set<string>(lading?.since?.omittedBlobs ?? []);
  const expectedAtTarget = new Set<string>();
  const images: ArtifactReport[] = [];
  const charts: ArtifactReport[] = [];
  for (const root of g.stopped === undefined ? (g.index?.manifests ?? []) : []) {
    const ref = root.annotations?.[Annotation.refName] ?? root.annotations?.[Annotation.containerdName];
    if (!ref) {
      problems.add(
        Member.index,
        'schema',
        `descriptor ${root.digest} has no ${Annotation.refName} annotation`,
      );
    }
    const report: ArtifactReport = {
      ref: ref ?? root.digest,
      digest: root.digest,
      mediaType: root.mediaType,
      ok: true,
      problems: [],
      expectedAtTarget: [],
    };
    let isChart = (ref ?? '').startsWith('charts/');
    /**
     * The node that referenced each node: the walk takes the copy pushed last first, so the
     * latest parent is the one the node is reached from (as a recursive walk would).
     */
    const parentOf = new Map<string, string>([[root.digest, Member.index]]);
    const problem = (name: string, kind: 'missing' | 'truncated' | 'digest' | 'schema', msg: string) => {
      // A member already missing (or cut short) is one problem, however many nodes refer to it:
      // the artifact names it, the list does not repeat it.
      if (!(kind === 'missing' || kind === 'truncated') || !problems.has(name, kind))
        problems.add(name, kind, msg);
      report.problems.push(`${name}: ${msg}`);
    };
    /** Check a node; true to walk its children. */
    const enter = (d: Descriptor): boolean => {
      const parent = parentOf.get(d.digest) as string;
      const name = blobMemberName(d.digest);
      const info = members.get(name);
      if (!info) {
        if (omitted.has(d.digest)) {
          expectedAtTarget.add(d.digest);
          report.expectedAtTarget.push(d.digest);
          return false;
        }
        problem(
          name,
          truncated.has(name) ? 'truncated' : 'missing',
          `${d.mediaType} referenced by ${parent} is not in the bundle`,
        );
        return false;
      }
      if (info.size !== d.size) {
        problem(name, 'digest', `is ${info.size} bytes, its descriptor in ${parent} says ${d.size}`);
      }
      if (badContent.has(name)) report.problems.push(`${name}: content does not match its digest`);
      if (!isManifestOrIndexType(d.mediaType) && !manifests.has(d.digest)) {
        if (d.mediaType === MediaType.helmConfig) isChart = true;
        return false;
      }
      if (!manifests.has(d.digest)) {
        if (!badContent.has(name)) {
          problem(
            name,
            'schema',
            `is not a readable ${d.mediaType} (larger than ${MAX_MANIFEST_BYTES} bytes or not valid)`,
          );
        }
        return false;
      }
      return true;
    };
    await walkDescriptors(
      [root],
      async (d) => {
        const node = manifests.get(d.digest);
        const kids = node ? successors(node) : [];
        for (const k of kids) parentOf.set(k.digest, d.digest);
        return kids;
      },
      { enter },
    );
    report.ok = report.problems.length === 0;
    (isChart ? charts : images).push(report);
  }
  // Supply-chain artifacts: every node of each carried extra is in the bundle (its subject is the
  // image, checked above).
  for (const img of lading?.images ?? []) {
    const report = images.find((r) => r.ref === img.ref);
    if (!report) continue;
    if (img.digest !== img.upstreamDigest) report.upstreamDigest = img.upstreamDigest;
    if (img.extras?.length) report.extras = img.extras.length;
    if (img.signatures?.length) report.signatures = img.signatures;
    for (const e of img.extras ?? []) {
      const nodes: Descriptor[] = [{ mediaType: e.mediaType, digest: e.digest as Digest, size: e.size }];
      const node = manifests.get(e.digest);
      if (node?.kind === 'manifest') nodes.push(node.manifest.config, ...node.manifest.layers);
      for (const d of nodes) {
        const name = blobMemberName(d.digest);
        if (members.has(name) || omitted.has(d.digest)) continue;
        const msg = `${d.mediaType} of the carried ${e.kind} ${e.digest} is not in the bundle`;
        const kind = truncated.has(name) ? 'truncated' : 'missing';
        if (!problems.has(name, kind)) problems.add(name, kind, msg);
        report.problems.push(`${name}: ${msg}`);
        report.ok = false;
      }
    }
  }
  if (lading && g.index) {
    const roots = new Set(g.index.manifests.map((d) => d.digest as string));
    for (const img of lading.images) {
      if (!roots.has(img.digest)) {
        problems.add(Member.manifest, 'schema', `image ${img.ref} (${img.digest}) is not in ${Member.index}`);
      }
    }
    for (const c of lading.charts) {
      if (!roots.has(c.digest)) {
        problems.add(
          Member.manifest,
          'schema',
          `chart ${c.name} ${c.version} (${c.digest}) is not in ${Member.index}`,
        );
      }
    }
  }
  return { images, charts, expectedAtTarget: [...expectedAtTarget] };
}
