import { resolve } from 'node:path';
// Subpaths, not the whole of @lading/core: `verify` does not load the registry client, the chart
// code or their dependencies (~0.2 s of start-up).
import {
  type ArtifactReport,
  MAX_METADATA_BYTES,
  openBundle,
  type PartDigest,
  type VerifyProgress,
  type VerifyReport,
  verifyBundle,
} from '@lading/core/bundle';
import { digestOf } from '@lading/core/digest';
import type { ImageSignatureReport } from '@lading/core/provenance';
import { formatBytes } from '@lading/core/util';
import { type BundleLocation, type BundleLocationOptions, openBundleLocation } from './bundle-location.ts';
import type { ReportContents } from './report-model.ts';

/** One file (or S3 object) of the bundle, with the sha256 computed in the verification pass. */
export interface BundleFileDigest {
  name: string;
  /** Local path, or `s3://bucket/key`. */
  path: string;
  size: number;
  sha256: string;
}

/** What `lading-load verify` reports: the VerifyReport plus where and how it was checked. */
export interface VerifyResult extends VerifyReport {
  /** The public key file given with --key. */
  keyFile: string;
  /** Where the bundle was read from: absolute local path or s3://bucket/key. */
  location: { kind: 'local' | 's3'; path: string; size: number };
  /** sha256 of the bundle file(s) as read in the same pass (tar or parts; none for a directory). */
  bundleFiles: BundleFileDigest[];
  startedAt: string;
  durationMs: number;
  /** The --report file written, if any. */
  reportFile: string | null;
  /**
   * `--image-key`: the carried upstream signatures re-checked with the site's vendor keys
   * (only when the bundle itself verified). Absent without --image-key.
   */
  imageSignatures?: { keys: Array<{ file: string; fingerprint: string }>; images: ImageSignatureReport[] };
  /** With `contents`: the SBOM and upstream signature results, read after verification. */
  contents?: ReportContents;
}

export interface RunVerifyOptions extends BundleLocationOptions {
  bundle: string;
  /** Path of the release public key (SPKI PEM). */
  keyFile: string;
  onProgress?: (p: VerifyProgress) => void;
  /**
   * Also hash each bundle file as a whole (the auditor's `sha256sum bundle.tar`), in the same
   * pass. Costs a second SHA-256 over every byte, so only the report asks for it; split parts are
   * always hashed (they are checked against NAME.tar.sha256).
   */
  fileDigests?: boolean;
  /** Called once the bundle is opened (its size known). */
  onOpen?: (loc: BundleLocation, size: number) => void;
  /** Vendor public keys (PEM files): re-check the carried upstream signatures with them. */
  imageKeys?: string[];
  /** Also read the SBOM and the upstream signature results for the report (see readContents). */
  contents?: boolean;
}

/** Open the bundle (path or s3://), verify it in one streaming pass, and describe the result. */
export async function runVerify(opts: RunVerifyOptions): Promise<VerifyResult> {
  const started = Date.now();
  const startedAt = new Date(started).toISOString();
  const loc = await openBundleLocation(opts.bundle, opts);
  try {
    const files: BundleFileDigest[] = [];
    let size = loc.s3?.size ?? 0;
    let announced = false;
    const report = await verifyBundle(loc.input, {
      publicKey: opts.keyFile,
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.fileDigests
        ? {
            onFile: (f: PartDigest) =>
              files.push({ name: f.name, path: f.path, size: f.size, sha256: f.hex }),
          }
        : {}),
      onProgress: (p) => {
        size = p.totalBytes;
        if (!announced) {
          announced = true;
          opts.onOpen?.(loc, size);
        }
        opts.onProgress?.(p);
      },
    });
    let imageSignatures: VerifyResult['imageSignatures'];
    if (opts.imageKeys?.length) {
      // loaded only here: the provenance code is not needed for a plain verify
      const prov = await import('@lading/core/provenance');
      const keys = await Promise.all(opts.imageKeys.map((k) => prov.loadImageKey(k)));
      imageSignatures = {
        keys: keys.map((k) => ({ file: k.source, fingerprint: k.fingerprint })),
        images: [],
      };
      if (report.ok) {
        const { BundleTarget } = await import('@lading/core/bundle');
        const target = await BundleTarget.open(loc.input, opts.signal ? { signal: opts.signal } : {});
        try {
          imageSignatures.images = await prov.recheckImageSignatures(target, target.bundle.ladingJson, keys, {
            ...(opts.signal ? { signal: opts.signal } : {}),
          });
        } finally {
          await target.close();
        }
        for (const i of imageSignatures.images) {
          if (i.required && !i.ok) {
            report.ok = false;
            report.problems.push({
              member: i.ref,
              kind: 'upstream-signature',
              message: `no valid upstream signature by ${keys.map((k) => k.source).join(', ')}: ${i.problems.join('; ')}`,
            });
          }
        }
      }
    }
    const contents = opts.contents ? await readContents(loc, report.sumsDigest, opts.signal) : undefined;
    return {
      ...report,
      ...(imageSignatures ? { imageSignatures } : {}),
      ...(contents ? { contents } : {}),
      keyFile: opts.keyFile,
      location: { kind: loc.kind, path: loc.kind === 'local' ? resolve(loc.display) : loc.display, size },
      bundleFiles: files,
      startedAt,
      durationMs: Date.now() - started,
      reportFile: null,
    };
  } finally {
    await loc.close();
  }
}

/**
 * What the report shows besides the verification: the SBOM summary, the upstream signature
 * results and supply-chain artifacts lading.json records. Read from the same bundle after the
 * pass, and only when its SHA256SUMS is still the one verified (else: nothing, the report says
 * what verification found). A bundle too damaged to open has none.
 */
async function readContents(
  loc: BundleLocation,
  sumsDigest: string | null,
  signal: AbortSignal | undefined,
): Promise<ReportContents | undefined> {
  let b: Awaited<ReturnType<typeof openBundle>>;
  try {
    b = await openBundle(loc.input, signal ? { signal } : {});
  } catch {
    return undefined;
  }
  try {
    if (digestOf(b.sumsBytes) !== sumsDigest) return undefined;
    const read = async (name: string): Promise<unknown> => {
      if (!b.member(name)) return undefined;
      try {
        return JSON.parse(
          (await b.readMember(name, { limit: MAX_METADATA_BYTES, ...(signal ? { signal } : {}) })).toString(
            'utf8',
          ),
        );
      } catch {
        return undefined;
      }
    };
    const out: ReportContents = {};
    const sbom = (await read('sbom.cdx.json')) as
      | {
          bomFormat?: string;
          specVersion?: string;
          serialNumber?: string;
          components?: Array<Record<string, unknown>>;
        }
      | undefined;
    if (sbom && Array.isArray(sbom.components)) {
      const components = sbom.components.map((c) => ({
        type: String(c.type ?? ''),
        name: String(c.name ?? ''),
        version: String(c.version ?? ''),
        purl: String(c.purl ?? ''),
      }));
      const counts = new Map<string, number>();
      for (const c of components) counts.set(c.type, (counts.get(c.type) ?? 0) + 1);
      out.sbom = {
        format: `${sbom.bomFormat ?? 'CycloneDX'} ${sbom.specVersion ?? ''}`.trim(),
        serialNumber: String(sbom.serialNumber ?? ''),
        byType: [...counts.entries()]
          .sort(([a], [c]) => a.localeCompare(c))
          .map(([type, count]) => ({ type, count })),
        components,
      };
    }
    const lading = (await read('lading.json')) as
      | { images?: Array<Record<string, unknown>>; since?: { omittedBlobs?: unknown[] } | null }
      | undefined;
    const images = Array.isArray(lading?.images) ? lading.images : [];
    if (images.some((i) => Array.isArray(i.signatures))) {
      out.signatures = images.flatMap((i) =>
        (Array.isArray(i.signatures) ? (i.signatures as Array<Record<string, unknown>>) : []).map((s) => ({
          image: String(i.ref ?? ''),
          scheme: String(s.scheme ?? ''),
          digest: String(s.digest ?? ''),
          key: String(s.key ?? ''),
          signature: String(s.signature ?? ''),
        })),
      );
    }
    const kinds = new Map<string, number>();
    for (const i of images) {
      for (const e of Array.isArray(i.extras) ? (i.extras as Array<{ kind?: unknown }>) : []) {
        const k = String(e.kind ?? '?');
        kinds.set(k, (kinds.get(k) ?? 0) + 1);
      }
    }
    if (kinds.size)
      out.extras = [...kinds.entries()]
        .sort(([a], [c]) => a.localeCompare(c))
        .map(([kind, count]) => ({ kind, count }));
    if (Array.isArray(lading?.since?.omittedBlobs)) out.omittedBlobs = lading.since.omittedBlobs.length;
    return out;
  } finally {
    await b.close().catch(() => {});
  }
}

function artifactLines(title: string, list: ArtifactReport[]): string[] {
  if (list.length === 0) return [`${title}: none`];
  const out = [`${title} (${list.length}):`];
  for (const a of list) {
    out.push(`  ${a.ok ? 'OK    ' : 'FAILED'}  ${a.ref}  ${a.digest}`);
    if (a.upstreamDigest)
      out.push(`          platform filter: a new index; upstream ${a.upstreamDigest} -> bundled ${a.digest}`);
    if (a.extras) out.push(`          ${a.extras} supply-chain artifact(s)`);
    for (const x of a.signatures ?? []) {
      out.push(
        `          upstream signature (checked at build time): ${x.scheme} over ${x.digest}, key ${x.key}, signature ${x.signature}`,
      );
    }
    for (const p of a.problems) out.push(`          ${p}`);
    if (a.expectedAtTarget.length)
      out.push(`          ${a.expectedAtTarget.length} blob(s) expected at the target (differential bundle)`);
  }
  return out;
}

/** The human report printed by `lading-load verify`. */
export function formatVerifyText(r: VerifyResult): string {
  const out: string[] = [];
  const name = r.bundle.name
    ? `${r.bundle.name} ${r.bundle.version ?? ''}`.trim()
    : '(unknown: lading.json unreadable)';
  out.push(`Bundle:    ${name}`);
  out.push(`Source:    ${r.location.path} (${r.bundle.kind}, ${formatBytes(r.location.size)})`);
  out.push(
    `Signature: ${r.signature.ok ? 'OK' : 'FAILED'} (key ${r.signature.keyFingerprint}, ${r.keyFile})`,
  );
  if (r.sumsDigest) out.push(`SHA256SUMS: ${r.sumsDigest}`);
  if (r.since)
    out.push(`Differential: needs ${r.since.name} ${r.since.version} (${r.since.digest}) at the target`);
  out.push(...artifactLines('Images', r.images));
  out.push(...artifactLines('Charts', r.charts));
  if (r.files.length) {
    out.push(`Files (${r.files.length}):`);
    for (const f of r.files) {
      out.push(`  ${f.ok ? 'OK    ' : 'FAILED'}  ${f.path}`);
      for (const p of f.problems) out.push(`          ${p}`);
    }
  } else out.push('Files: none');
  if (r.parts.length) {
    out.push(`Parts (${r.parts.length}):`);
    for (const p of r.parts) {
      out.push(`  ${p.ok ? 'OK    ' : 'FAILED'}  ${p.name}  ${p.sha256 ?? '(not read)'}`);
      for (const q of p.problems) out.push(`          ${q}`);
    }
  } else {
    for (const f of r.bundleFiles) out.push(`File sha256: ${f.sha256}  ${f.name}`);
  }
  out.push(
    `Checked:   ${r.members} members, ${formatBytes(r.bytes)} in ${(r.durationMs / 1000).toFixed(1)} s`,
  );
  if (r.imageSignatures) {
    const keys = r.imageSignatures.keys.map((k) => `${k.file} ${k.fingerprint}`).join(', ');
    const list = r.imageSignatures.images;
    out.push(
      `Upstream signatures (--image-key ${keys}): ${list.length ? `${list.length} image(s)` : r.ok || list.length ? 'no image carries one' : 'not checked (the bundle did not verify)'}`,
    );
    for (const i of list) {
      const what = i.ok
        ? i.signatures.map((s) => `${s.scheme} over ${s.digest} (signature ${s.signature})`).join('; ')
        : i.problems.join('; ');
      out.push(`  ${i.ok ? 'OK    ' : i.required ? 'FAILED' : 'NONE  '}  ${i.ref}  ${what}`);
    }
  }
  // The problems themselves are listed once, by the error (stderr), root cause first.
  out.push(
    `Verdict:   ${r.ok ? 'OK — the bundle is the one that was signed, complete and unchanged' : `FAILED (${r.problems.length} problem(s))`}`,
  );
  return out.join('\n');
}
