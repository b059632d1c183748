import { basename, dirname, resolve } from 'node:path';
import { InvalidInputError } from '@lading/core/errors';
import { formatBytes, writeFileAtomic } from '@lading/core/util';
import type { VerifyResult } from './verify.ts';

/**
 * The `verify --report FILE` document: Markdown, self-contained, for an auditor to file. It says
 * what was checked (bundle, its file digests, the SHA256SUMS digest, the key fingerprint), the
 * verdict, every image, chart, file and problem, and the commands that repeat the check with
 * nothing but tar, openssl and sha256sum.
 */

export interface ReportContext {
  /** `lading-load` name and version. */
  tool: { name: string; version: string };
  /** When the report was made (default: now). */
  date?: Date;
  /** The S3 endpoint an s3:// bundle was read through, for the re-check commands. */
  endpoint?: string | undefined;
}

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
      const sums = r.parts[0] ? `${r.parts[0].name.replace(/\.\d{3}$/, '')}.sha256` : 'NAME.tar.sha256';
      const prefix = r.location.path.slice(0, r.location.path.lastIndexOf('/') + 1);
      for (const f of [...files, sums]) lines.push(`aws s3 cp${ep} ${shq(prefix + f)} ${shq(f)}`);
    } else {
      lines.push(`aws s3 cp${ep} ${shq(r.location.path)} ${shq(name)}`);
    }
  }
  const step = r.location.kind === 's3' ? 3 : 2;
  if (r.bundle.kind === 'parts') {
    const stem = (r.parts[0]?.name ?? name).replace(/\.\d{3}$/, '');
    const dir = r.location.kind === 's3' ? '.' : dirname(resolve(r.location.path));
    lines.push(`# ${step}. The parts are complete and unchanged, then join and extract them`);
    lines.push(`cd ${shq(dir)}`);
    lines.push(`sha256sum -c ${shq(`${stem}.sha256`)}`);
    lines.push(
      `mkdir ${extractDir} && cat ${r.parts.map((p) => shq(p.name)).join(' ') || shq(`${stem}.`) + '*'} | tar -xf - -C ${extractDir}`,
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

/** The report as Markdown. */
export function renderMarkdownReport(r: VerifyResult, ctx: ReportContext): string {
  const date = (ctx.date ?? new Date()).toISOString();
  const verdict = r.ok ? 'PASSED' : 'FAILED';
  const out: string[] = [];
  out.push(`# Bundle verification report: ${verdict}`);
  out.push('');
  out.push(
    r.ok
      ? 'The bundle is the one that was signed with the key below: the signature over SHA256SUMS verifies, every member matches SHA256SUMS, every blob matches its digest, and every image and chart is complete.'
      : `The bundle FAILED verification: ${r.problems.length} problem(s), listed below. Do not load it.`,
  );
  out.push('');
  out.push('| | |');
  out.push('| --- | --- |');
  const row = (k: string, v: string) => out.push(`| ${k} | ${v} |`);
  row('Verdict', `**${verdict}**`);
  row('Date', code(date));
  row('Tool', code(`${ctx.tool.name} ${ctx.tool.version}`));
  row(
    'Bundle',
    r.bundle.name ? code(`${r.bundle.name} ${r.bundle.version ?? ''}`.trim()) : '(lading.json unreadable)',
  );
  row(
    'Bundle location',
    `${code(r.location.path)} (${r.bundle.kind}${r.location.kind === 's3' ? ', S3' : ''})`,
  );
  if (ctx.endpoint && r.location.kind === 's3') row('S3 endpoint', code(ctx.endpoint));
  row('Bundle size', `${r.location.size} bytes (${formatBytes(r.location.size)})`);
  for (const f of r.bundleFiles) row(`sha256 of ${code(f.name)}`, code(f.sha256));
  row('sha256 of SHA256SUMS (bundle identity)', r.sumsDigest ? code(hexOf(r.sumsDigest)) : '(missing)');
  row('Public key file', code(r.keyFile));
  row('Key fingerprint (sha256 of SPKI DER)', code(r.signature.keyFingerprint));
  row('Signature', r.signature.ok ? 'OK' : '**FAILED**');
  row('Members checked', String(r.members));
  row('Bytes hashed', `${r.bytes} (${formatBytes(r.bytes)})`);
  row('Duration', `${(r.durationMs / 1000).toFixed(1)} s`);
  if (r.since) row('Differential bundle; base', code(`${r.since.name} ${r.since.version} ${r.since.digest}`));
  out.push('');

  const artifacts = (title: string, list: VerifyResult['images']) => {
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
      const probs = [...a.problems];
      if (a.upstreamDigest) probs.push(`platform filter: new index; upstream ${a.upstreamDigest}`);
      if (a.extras) probs.push(`${a.extras} supply-chain artifact(s) carried`);
      if (a.signatures) probs.push(`${a.signatures} upstream signature(s) checked at build time`);
      if (a.expectedAtTarget.length)
        probs.push(`${a.expectedAtTarget.length} blob(s) expected at the target`);
      out.push(
        `| ${a.ok ? 'OK' : '**FAILED**'} | ${code(a.ref)} | ${code(a.digest)} | ${probs.map(md).join('<br>') || ''} |`,
      );
    }
    out.push('');
  };
  artifacts(`Images (${r.images.length})`, r.images);
  artifacts(`Charts (${r.charts.length})`, r.charts);

  out.push(`## Files (${r.files.length})`);
  out.push('');
  if (r.files.length === 0) out.push('None.');
  else {
    out.push('| Status | Path | Problems |');
    out.push('| --- | --- | --- |');
    for (const f of r.files)
      out.push(`| ${f.ok ? 'OK' : '**FAILED**'} | ${code(f.path)} | ${f.problems.map(md).join('<br>')} |`);
  }
  out.push('');
  if (r.parts.length) {
    out.push(`## Parts (${r.parts.length})`);
    out.push('');
    out.push('| Status | Part | sha256 | Problems |');
    out.push('| --- | --- | --- | --- |');
    for (const p of r.parts) {
      out.push(
        `| ${p.ok ? 'OK' : '**FAILED**'} | ${code(p.name)} | ${p.sha256 ? code(p.sha256) : '(not read)'} | ${p.problems.map(md).join('<br>')} |`,
      );
    }
    out.push('');
  }
  if (r.imageSignatures) {
    out.push('## Upstream signatures (--image-key)');
    out.push('');
    for (const k of r.imageSignatures.keys)
      out.push(`Key ${code(k.file)}: fingerprint ${code(k.fingerprint)}`);
    out.push('');
    if (r.imageSignatures.images.length === 0)
      out.push('No image carries a signature (or the bundle did not verify).');
    else {
      out.push('| Status | Image | Scheme | Signed digest | Signature manifest | Problems |');
      out.push('| --- | --- | --- | --- | --- | --- |');
      for (const i of r.imageSignatures.images) {
        const status = i.ok ? 'OK' : i.required ? '**FAILED**' : 'not signed by this key';
        if (i.signatures.length === 0)
          out.push(`| ${status} | ${code(i.ref)} | | | | ${i.problems.map(md).join('<br>')} |`);
        for (const x of i.signatures) {
          out.push(
            `| ${status} | ${code(i.ref)} | ${x.scheme} | ${code(x.digest)} | ${code(x.signature)} | |`,
          );
        }
      }
    }
    out.push('');
  }
  out.push(`## Problems (${r.problems.length})`);
  out.push('');
  if (r.problems.length === 0) out.push('None.');
  else {
    out.push('| Member | Kind | Problem |');
    out.push('| --- | --- | --- |');
    for (const p of r.problems) out.push(`| ${code(p.member)} | ${p.kind} | ${md(p.message)} |`);
  }
  out.push('');
  out.push('## Checking it again by hand');
  out.push('');
  out.push(
    'With nothing but a shell, `tar`, `openssl` and `sha256sum` (GNU coreutils); every command must succeed and print what the comments say.',
  );
  out.push('');
  out.push('```sh');
  out.push(...recheckCommands(r, ctx));
  out.push('```');
  out.push('');
  return out.join('\n');
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
