import { InvalidInputError } from '@lading/core/errors';
import { writeFileAtomic } from '@lading/core/util';
import {
  type ArtifactRow,
  buildReportModel,
  type ReportContext,
  type ReportModel,
  type Span,
} from './report-model.ts';
import type { VerifyResult } from './verify.ts';

export { type ReportContext, recheckCommands, shq } from './report-model.ts';

/**
 * The `verify --report FILE.md` document: Markdown, self-contained, for an auditor to file. It says
 * what was checked (bundle, its file digests, the SHA256SUMS digest, the key fingerprint), the
 * verdict, every image, chart, file and problem, the SBOM and upstream signatures, and the
 * commands that repeat the check with nothing but tar, openssl and sha256sum. The content comes
 * from report-model.ts, shared with the HTML report (report-html.ts).
 */

/** Escape text for a Markdown table cell or inline text. */
function md(s: string): string {
  return s
    .replace(/\\/g, '\\\\')
    .replace(/\|/g, '\\|')
    .replace(/([`*_<>[\]])/g, '\\$1')
    .replace(/\r?\n/g, ' ');
}

/** Inline code; falls back to escaped text when the value holds a backtick or newline. */
function code(s: string): string {
  return /[`\n\r|]/.test(s) ? md(s) : `\`${s}\``;
}

function spans(list: Span[]): string {
  return list
    .map((s) => (typeof s === 'string' ? md(s) : 'code' in s ? code(s.code) : `**${md(s.strong)}**`))
    .join('');
}

const status = (ok: boolean) => (ok ? 'OK' : '**FAILED**');

/** The report as Markdown. */
export function renderMarkdownReport(r: VerifyResult, ctx: ReportContext): string {
  return markdownOf(buildReportModel(r, ctx));
}

/** Render a report model as Markdown. */
export function markdownOf(m: ReportModel): string {
  const out: string[] = [];
  out.push(`# Bundle verification report: ${m.verdict}`);
  out.push('');
  out.push(m.summary);
  out.push('');
  out.push('| | |');
  out.push('| --- | --- |');
  for (const f of m.facts) out.push(`| ${spans(f.label)} | ${spans(f.value)} |`);
  out.push('');

  const artifacts = (title: string, list: ArtifactRow[]) => {
    out.push(`## ${title}`);
    out.push('');
    if (list.length === 0) {
      out.push('None.');
      out.push('');
      return;
    }
    out.push('| Status | Reference | Digest | Notes and problems |');
    out.push('| --- | --- | --- | --- |');
    for (const a of list) {
      out.push(
        `| ${status(a.ok)} | ${code(a.ref)} | ${code(a.digest)} | ${a.problems.map(md).join('<br>') || ''} |`,
      );
    }
    out.push('');
  };
  artifacts(`Images (${m.images.length})`, m.images);
  artifacts(`Charts (${m.charts.length})`, m.charts);

  out.push(`## Files (${m.files.length})`);
  out.push('');
  if (m.files.length === 0) out.push('None.');
  else {
    out.push('| Status | Path | Problems |');
    out.push('| --- | --- | --- |');
    for (const f of m.files)
      out.push(`| ${status(f.ok)} | ${code(f.path)} | ${f.problems.map(md).join('<br>')} |`);
  }
  out.push('');
  if (m.parts.length) {
    out.push(`## Parts (${m.parts.length})`);
    out.push('');
    out.push('| Status | Part | sha256 | Problems |');
    out.push('| --- | --- | --- | --- |');
    for (const p of m.parts) {
      out.push(
        `| ${status(p.ok)} | ${code(p.name)} | ${p.sha256 ? code(p.sha256) : '(not read)'} | ${p.problems.map(md).join('<br>')} |`,
      );
    }
    out.push('');
  }
  if (m.base) {
    out.push('## Differential base');
    out.push('');
    out.push(baseSentence(m, code));
    out.push('');
  }
  const c = m.contents;
  if (c.sbom) {
    out.push(`## SBOM (${c.sbom.components.length} components)`);
    out.push('');
    out.push(sbomSentence(m, code));
    out.push('');
    out.push('| Type | Name | Version | purl |');
    out.push('| --- | --- | --- | --- |');
    for (const x of c.sbom.components)
      out.push(`| ${md(x.type)} | ${code(x.name)} | ${code(x.version)} | ${code(x.purl)} |`);
    out.push('');
  }
  out.push('## Upstream signatures (checked at build time)');
  out.push('');
  out.push(signaturesSentence(m));
  if (c.signatures?.length) {
    out.push('');
    out.push('| Image | Scheme | Signed digest | Vendor key | Signature manifest |');
    out.push('| --- | --- | --- | --- | --- |');
    for (const s of c.signatures)
      out.push(
        `| ${code(s.image)} | ${md(s.scheme)} | ${code(s.digest)} | ${code(s.key)} | ${code(s.signature)} |`,
      );
  }
  out.push('');
  if (m.imageKeys) {
    out.push('## Upstream signatures (--image-key)');
    out.push('');
    for (const k of m.imageKeys.keys) out.push(`Key ${code(k.file)}: fingerprint ${code(k.fingerprint)}`);
    out.push('');
    if (m.imageKeys.images.length === 0) out.push(IMAGE_KEY_NONE);
    else {
      out.push('| Status | Image | Scheme | Signed digest | Signature manifest | Problems |');
      out.push('| --- | --- | --- | --- | --- | --- |');
      for (const i of m.imageKeys.images) {
        const st = i.status === 'FAILED' ? '**FAILED**' : i.status;
        if (i.signatures.length === 0)
          out.push(`| ${st} | ${code(i.ref)} | | | | ${i.problems.map(md).join('<br>')} |`);
        for (const x of i.signatures)
          out.push(
            `| ${st} | ${code(i.ref)} | ${md(x.scheme)} | ${code(x.digest)} | ${code(x.signature)} | |`,
          );
      }
    }
    out.push('');
  }
  out.push(`## Problems (${m.problems.length})`);
  out.push('');
  if (m.problems.length === 0) out.push('None.');
  else {
    out.push('| Member | Kind | Problem |');
    out.push('| --- | --- | --- |');
    for (const p of m.problems) out.push(`| ${code(p.member)} | ${p.kind} | ${md(p.message)} |`);
  }
  out.push('');
  out.push('## Checking it again by hand');
  out.push('');
  out.push(RECHECK_INTRO.replace('tar, openssl and sha256sum', '`tar`, `openssl` and `sha256sum`'));
  out.push('');
  out.push('```sh');
  out.push(...m.recheck);
  out.push('```');
  out.push('');
  return out.join('\n');
}

export const IMAGE_KEY_NONE = 'No image carries a signature (or the bundle did not verify).';

/** Sentences both renderers use; `c` formats a digest or name as code in the target markup. */
export const RECHECK_INTRO =
  'With nothing but a shell, tar, openssl and sha256sum (GNU coreutils); every command must succeed and print what the comments say.';

export function baseSentence(m: ReportModel, c: (s: string) => string): string {
  const b = m.base;
  if (!b) return '';
  return (
    `This is a differential bundle: it leaves out ${b.omittedBlobs ?? 'the'} blob(s) that its base ${c(`${b.name} ${b.version}`)} ` +
    `(SHA256SUMS ${c(b.digest)}) carried. ${b.expectedAtTarget} of them are needed by its images and must already be in the ` +
    'target registry: load the base bundle first.'
  );
}

export function sbomSentence(m: ReportModel, c: (s: string) => string): string {
  const s = m.contents.sbom;
  if (!s) return '';
  const types = s.byType.map((t) => `${t.count} ${t.type}`).join(', ');
  return `${c('sbom.cdx.json')} is ${s.format} (serial ${c(s.serialNumber)}), covered by SHA256SUMS and so by the signature: ${types || 'no components'}.`;
}

export function signaturesSentence(m: ReportModel): string {
  const list = m.contents.signatures;
  const extras = m.contents.extras?.length
    ? ` The bundle carries supply-chain artifacts with its images: ${m.contents.extras.map((e) => `${e.count} ${e.kind}`).join(', ')}.`
    : '';
  if (list === undefined)
    return `No upstream signature was checked when the bundle was built (no verify: rules in its spec).${extras}`;
  return `${list.length} vendor signature(s) were checked at build time, offline, with the keys of the spec's verify: rules; each signs the digest shown.${extras}`;
}

/** Write the report to `file` atomically and durably (core's writeFileAtomic). */
export async function writeReportFile(file: string, text: string): Promise<void> {
  try {
    await writeFileAtomic(file, text);
  } catch (err) {
    throw new InvalidInputError(`cannot write the report ${file}: ${(err as Error).message}`, {
      hint: 'give --report a path in an existing, writable folder',
      cause: err,
    });
  }
}
