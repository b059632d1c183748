import { basename, dirname, resolve } from 'node:path';
import { parsePartName } from '@lading/core/bundle';
import { formatBytes } from '@lading/core/util';
import type { VerifyResult } from './verify.ts';

/**
 * The content of the `verify --report` document, built once from the verification result and
 * rendered by report.ts (Markdown) and report-html.ts (HTML): what each says is the same; only
 * the markup differs.
 */

export interface ReportContext {
  /** `lading-load` name and version. */
  tool: { name: string; version: string };
  /** When the report was made (default: now). */
  date?: Date;
  /** The S3 endpoint an s3:// bundle was read through, for the re-check commands. */
  endpoint?: string | undefined;
}

/** A piece of text: plain, `code` (digests, paths, references) or strong (verdicts). */
export type Span = string | { code: string } | { strong: string };

export interface ReportRow {
  label: Span[];
  value: Span[];
}

export interface ArtifactRow {
  ok: boolean;
  ref: string;
  digest: string;
  /** Notes (platform filter, supply-chain artifacts, signatures) and problems. */
  problems: string[];
}

/** The SBOM carried in the bundle (sbom.cdx.json), summarised. */
export interface SbomSummary {
  format: string;
  serialNumber: string;
  /** Components by CycloneDX type (`container`: images, `application`: charts). */
  byType: Array<{ type: string; count: number }>;
  components: Array<{ type: string; name: string; version: string; purl: string }>;
}

/** One upstream signature checked at build time (lading.json `images[].signatures[]`). */
export interface SignatureRow {
  image: string;
  scheme: string;
  /** The manifest digest it covers. */
  digest: string;
  /** sha256 fingerprint of the vendor key. */
  key: string;
  /** The manifest carrying the signature. */
  signature: string;
}

/** What the report reads from the bundle besides the verification: SBOM and upstream signatures. */
export interface ReportContents {
  /** Undefined when the bundle has no readable sbom.cdx.json. */
  sbom?: SbomSummary;
  /** Undefined when lading.json records no signature results (no `verify:` rules, or an older bundle). */
  signatures?: SignatureRow[];
  /** Supply-chain artifacts carried (lading.json `images[].extras[]`), by kind. */
  extras?: Array<{ kind: string; count: number }>;
  /** Blobs a differential bundle leaves out (lading.json `since.omittedBlobs`). */
  omittedBlobs?: number;
}

/** `verify --image-key`: the carried upstream signatures re-checked at the site with its vendor keys. */
export interface ImageKeyRecheck {
  keys: Array<{ file: string; fingerprint: string }>;
  images: Array<{
    ref: string;
    /** OK, FAILED (a signature checked at build time does not verify now) or not signed by these keys. */
    status: 'OK' | 'FAILED' | 'not signed by this key';
    signatures: Array<{ scheme: string; digest: string; signature: string }>;
    problems: string[];
  }>;
}

export interface ReportModel {
  ok: boolean;
  verdict: 'PASSED' | 'FAILED';
  /** One sentence: what passing means, or how many problems there are. */
  summary: string;
  facts: ReportRow[];
  images: ArtifactRow[];
  charts: ArtifactRow[];
  files: Array<{ ok: boolean; path: string; problems: string[] }>;
  parts: Array<{ ok: boolean; name: string; sha256: string | null; problems: string[] }>;
  problems: Array<{ member: string; kind: string; message: string }>;
  /** The differential bundle's base, when it is one. */
  base?: { name: string; version: string; digest: string; omittedBlobs?: number; expectedAtTarget: number };
  contents: ReportContents;
  /** Present with `verify --image-key`. */
  imageKeys?: ImageKeyRecheck;
  /** The auditor's shell steps: comment lines (`# 1. …`) and commands. */
  recheck: string[];
}

/** Quote a path for a POSIX shell. */
export function shq(s: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

function hexOf(d: string): string {
  return d.slice(d.indexOf(':') + 1);
}

/** The commands that repeat the verification by hand. */
export function recheckCommands(r: VerifyResult, ctx: ReportContext): string[] {
  const key = shq(resolve(r.keyFile));
  const lines: string[] = [];
  const fp = hexOf(r.signature.keyFingerprint);
  lines.push('# 1. The public key is the one this report names (expect the fingerprint below)');
  lines.push(`openssl pkey -pubin -in ${key} -outform DER | sha256sum    # ${fp}`);
  const name = r.bundle.kind === 'directory' ? '' : basename(r.location.path);
  let extractDir = 'bundle-check';
  if (r.location.kind === 's3') {
    lines.push('# 2. Download the bundle (any S3 client; here the AWS CLI)');
    const ep = ctx.endpoint ? ` --endpoint-url ${shq(ctx.endpoint)}` : '';
    if (r.bundle.kind === 'parts') {
      const files = r.parts.map((p) => p.name);
      const sums = r.parts[0] ? `${partStem(r.parts[0].name)}.sha256` : 'NAME.tar.sha256';
      const prefix = r.location.path.slice(0, r.location.path.lastIndexOf('/') + 1);
      for (const f of [...files, sums, `${sums}.sig`])
        lines.push(`aws s3 cp${ep} ${shq(prefix + f)} ${shq(f)}`);
    } else {
      lines.push(`aws s3 cp${ep} ${shq(r.location.path)} ${shq(name)}`);
    }
  }
  const step = r.location.kind === 's3' ? 3 : 2;
  if (r.bundle.kind === 'parts') {
    const stem = partStem(r.parts[0]?.name ?? name);
    const dir = r.location.kind === 's3' ? '.' : dirname(resolve(r.location.path));
    lines.push(
      `# ${step}. The parts list is the signed one (expect "Verified OK"), the parts are complete and unchanged; join and extract them`,
    );
    lines.push(`cd ${shq(dir)}`);
    lines.push(
      `openssl dgst -sha256 -verify ${key} -signature ${shq(`${stem}.sha256.sig`)} ${shq(`${stem}.sha256`)}`,
    );
    lines.push(`sha256sum -c ${shq(`${stem}.sha256`)}`);
    lines.push(
      `mkdir ${extractDir} && cat ${r.parts.map((p) => shq(p.name)).join(' ') || `${shq(`${stem}.`)}*`} | tar -xf - -C ${extractDir}`,
    );
  } else if (r.bundle.kind === 'tar') {
    const file = r.location.kind === 's3' ? name : resolve(r.location.path);
    const f = r.bundleFiles[0];
    lines.push(`# ${step}. The bundle file is this one (expect the sha256 below), then extract it`);
    lines.push(`sha256sum ${shq(file)}${f ? `    # ${f.sha256}` : ''}`);
    lines.push(`mkdir ${extractDir} && tar -xf ${shq(file)} -C ${extractDir}`);
  } else {
    extractDir = resolve(r.location.path);
    lines.push(`# ${step}. The bundle is already extracted in ${r.location.path}`);
  }
  lines.push(`# ${step + 1}. The signature over SHA256SUMS (expect "Verified OK"), then every member`);
  lines.push(`cd ${shq(extractDir)}`);
  lines.push(`openssl dgst -sha256 -verify ${key} -signature SHA256SUMS.sig SHA256SUMS`);
  lines.push(`sha256sum SHA256SUMS    # ${r.sumsDigest ? hexOf(r.sumsDigest) : '(SHA256SUMS missing)'}`);
  lines.push('sha256sum -c --strict SHA256SUMS');
  lines.push(`# ${step + 2}. Nothing unlisted is in the bundle (expect no output)`);
  lines.push(
    "find . -type f ! -name SHA256SUMS ! -name SHA256SUMS.sig | sed 's|^\\./||' | sort > /tmp/lading-members.txt",
  );
  lines.push('cut -c67- SHA256SUMS | sort | comm -23 /tmp/lading-members.txt -');
  return lines;
}

/** Build the report's content from a verification result. */
export function buildReportModel(r: VerifyResult, ctx: ReportContext): ReportModel {
  const date = (ctx.date ?? new Date()).toISOString();
  const verdict = r.ok ? 'PASSED' : 'FAILED';
  const facts: ReportRow[] = [];
  const row = (label: Span | Span[], value: Span | Span[]) =>
    facts.push({
      label: Array.isArray(label) ? label : [label],
      value: Array.isArray(value) ? value : [value],
    });
  row('Verdict', { strong: verdict });
  row('Date', { code: date });
  row('Tool', { code: `${ctx.tool.name} ${ctx.tool.version}` });
  row(
    'Bundle',
    r.bundle.name
      ? { code: `${r.bundle.name} ${r.bundle.version ?? ''}`.trim() }
      : '(lading.json unreadable)',
  );
  row('Bundle location', [
    { code: r.location.path },
    ` (${r.bundle.kind}${r.location.kind === 's3' ? ', S3' : ''})`,
  ]);
  if (ctx.endpoint && r.location.kind === 's3') row('S3 endpoint', { code: ctx.endpoint });
  row('Bundle size', `${r.location.size} bytes (${formatBytes(r.location.size)})`);
  for (const f of r.bundleFiles) row(['sha256 of ', { code: f.name }], { code: f.sha256 });
  row('sha256 of SHA256SUMS (bundle identity)', r.sumsDigest ? { code: hexOf(r.sumsDigest) } : '(missing)');
  row('Public key file', { code: r.keyFile });
  row('Key fingerprint (sha256 of SPKI DER)', { code: r.signature.keyFingerprint });
  row('Signature', r.signature.ok ? 'OK' : { strong: 'FAILED' });
  row('Members checked', String(r.members));
  row('Bytes hashed', `${r.bytes} (${formatBytes(r.bytes)})`);
  row('Duration', `${(r.durationMs / 1000).toFixed(1)} s`);
  if (r.since)
    row('Differential bundle; base', { code: `${r.since.name} ${r.since.version} ${r.since.digest}` });

  const artifact = (a: VerifyResult['images'][number]): ArtifactRow => {
    const problems = [...a.problems];
    if (a.upstreamDigest) problems.push(`platform filter: new index; upstream ${a.upstreamDigest}`);
    if (a.extras) problems.push(`${a.extras} supply-chain artifact(s) carried`);
    if (a.signatures?.length)
      problems.push(`${a.signatures.length} upstream signature(s) checked at build time`);
    if (a.expectedAtTarget.length)
      problems.push(`${a.expectedAtTarget.length} blob(s) expected at the target`);
    return { ok: a.ok, ref: a.ref, digest: a.digest, problems };
  };
  const contents = r.contents ?? {};
  return {
    ok: r.ok,
    verdict,
    summary: r.ok
      ? 'The bundle is the one that was signed with the key below: the signature over SHA256SUMS verifies, every member matches SHA256SUMS, every blob matches its digest, and every image and chart is complete.'
      : `The bundle FAILED verification: ${r.problems.length} problem(s), listed below. Do not load it.`,
    facts,
    images: r.images.map(artifact),
    charts: r.charts.map(artifact),
    files: r.files.map((f) => ({ ok: f.ok, path: f.path, problems: f.problems })),
    parts: r.parts.map((p) => ({ ok: p.ok, name: p.name, sha256: p.sha256 ?? null, problems: p.problems })),
    problems: r.problems.map((p) => ({ member: p.member, kind: p.kind, message: p.message })),
    ...(r.since
      ? {
          base: {
            ...r.since,
            ...(contents.omittedBlobs !== undefined ? { omittedBlobs: contents.omittedBlobs } : {}),
            expectedAtTarget: r.expectedAtTarget.length,
          },
        }
      : {}),
    contents,
    ...(r.imageSignatures
      ? {
          imageKeys: {
            keys: r.imageSignatures.keys,
            images: r.imageSignatures.images.map((i) => ({
              ref: i.ref,
              status: i.ok ? 'OK' : i.required ? 'FAILED' : 'not signed by this key',
              signatures: i.signatures.map((x) => ({
                scheme: x.scheme,
                digest: x.digest,
                signature: x.signature,
              })),
              problems: i.problems,
            })),
          },
        }
      : {}),
    recheck: recheckCommands(r, ctx),
  };
}

/** `NAME.tar` for a part `NAME.tar.000`; the name itself otherwise. */
function partStem(name: string): string {
  return parsePartName(name)?.base ?? name;
}
