import { baseSentence, IMAGE_KEY_NONE, RECHECK_INTRO, sbomSentence, signaturesSentence } from './report.ts';
import {
  type ArtifactRow,
  buildReportModel,
  type ReportContext,
  type ReportModel,
  type Span,
} from './report-model.ts';
import type { VerifyResult } from './verify.ts';

/**
 * The `verify --report FILE.html` document: one self-contained page for auditors and site leads
 * to read in a browser, forward and print. Inline CSS only: no script, no font, no image, no
 * link to anything outside the page (a Content-Security-Policy that allows nothing else says so
 * to the browser too). Same content as the Markdown report (report-model.ts).
 */

export function esc(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

const code = (s: string) => `<code>${esc(s)}</code>`;

function spans(list: Span[]): string {
  return list
    .map((s) =>
      typeof s === 'string' ? esc(s) : 'code' in s ? code(s.code) : `<strong>${esc(s.strong)}</strong>`,
    )
    .join('');
}

const status = (ok: boolean) => (ok ? '<td class="st ok">OK</td>' : '<td class="st bad">FAILED</td>');
const problems = (list: string[]) => list.map(esc).join('<br>');

const CSS = `
:root { --ok: #17663a; --ok-bg: #e3f4e9; --bad: #a3141b; --bad-bg: #fde7e8; --line: #d0d4d9; --muted: #5b636b; }
* { box-sizing: border-box; }
html { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans", sans-serif; color: #1d2125; background: #fff; }
body { margin: 0 auto; max-width: 72rem; padding: 1.5rem 2rem 3rem; }
h1 { font-size: 1.6rem; margin: 0 0 .3rem; }
h2 { font-size: 1.2rem; margin: 2rem 0 .6rem; padding-bottom: .2rem; border-bottom: 2px solid var(--line); }
code, pre { font: .86em/1.4 ui-monospace, "SFMono-Regular", "DejaVu Sans Mono", Menlo, Consolas, monospace; }
code { overflow-wrap: anywhere; }
.verdict { border: 2px solid; border-radius: .5rem; padding: 1rem 1.25rem; margin-bottom: 1rem; }
.verdict.pass { border-color: var(--ok); background: var(--ok-bg); }
.verdict.fail { border-color: var(--bad); background: var(--bad-bg); }
.badge { display: inline-block; font-weight: 700; font-size: 1.3rem; letter-spacing: .06em; padding: .1rem .7rem; border-radius: .3rem; color: #fff; }
.pass .badge { background: var(--ok); } .fail .badge { background: var(--bad); }
.verdict p { margin: .5rem 0 0; }
table { border-collapse: collapse; width: 100%; margin: .4rem 0; }
th, td { text-align: left; vertical-align: top; padding: .35rem .5rem; border-bottom: 1px solid var(--line); overflow-wrap: anywhere; }
table.fixed { table-layout: fixed; }
table.artifacts th:nth-child(1) { width: 5.5rem; } table.artifacts th:nth-child(2) { width: 30%; } table.artifacts th:nth-child(3) { width: 36%; }
table.sbom th:nth-child(1) { width: 7rem; } table.sbom th:nth-child(2) { width: 28%; } table.sbom th:nth-child(3) { width: 12%; }
th { background: #f3f5f7; font-weight: 600; }
table.facts th { width: 32%; background: none; font-weight: 600; color: var(--muted); }
td.st { font-weight: 700; white-space: nowrap; width: 5.5rem; }
td.ok { color: var(--ok); } td.bad { color: var(--bad); background: var(--bad-bg); }
.none, .note { color: var(--muted); }
pre { background: #f6f8fa; border: 1px solid var(--line); border-radius: .4rem; padding: .8rem 1rem; white-space: pre-wrap; overflow-wrap: anywhere; }
pre .c { color: var(--muted); }
footer { margin-top: 2.5rem; color: var(--muted); font-size: .85rem; border-top: 1px solid var(--line); padding-top: .6rem; }
@media print {
  @page { size: A4; margin: 14mm 12mm; }
  html { font-size: 10.5pt; }
  body { max-width: none; padding: 0; }
  h2 { break-after: avoid; page-break-after: avoid; }
  thead { display: table-header-group; }
  tr, pre, .verdict { break-inside: avoid; page-break-inside: avoid; }
  .verdict, .badge, td.bad, th { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  pre { white-space: pre-wrap; }
}
`;

/** The report as one HTML page. */
export function renderHtmlReport(r: VerifyResult, ctx: ReportContext): string {
  return htmlOf(buildReportModel(r, ctx), ctx);
}

/** Render a report model as one self-contained HTML page. */
export function htmlOf(m: ReportModel, ctx: ReportContext): string {
  const bundle = m.facts.find((f) => f.label[0] === 'Bundle')?.value ?? [];
  const bundleText = bundle
    .map((s) => (typeof s === 'string' ? s : 'code' in s ? s.code : s.strong))
    .join('');
  const o: string[] = [];
  const section = (id: string, title: string, body: string) =>
    o.push(`<section id="${id}">`, `<h2>${esc(title)}</h2>`, body, '</section>');
  const artifacts = (id: string, title: string, list: ArtifactRow[]) => {
    if (list.length === 0) return section(id, `${title} (0)`, '<p class="none">None.</p>');
    const rows = list.map(
      (a) =>
        `<tr class="${a.ok ? 'ok' : 'bad'}">${status(a.ok)}<td class="ref">${code(a.ref)}</td><td class="digest">${code(a.digest)}</td><td>${problems(a.problems)}</td></tr>`,
    );
    section(
      id,
      `${title} (${list.length})`,
      `<table class="fixed artifacts"><thead><tr><th>Status</th><th>Reference</th><th>Digest</th><th>Notes and problems</th></tr></thead><tbody>\n${rows.join('\n')}\n</tbody></table>`,
    );
  };

  o.push('<!doctype html>', '<html lang="en">', '<head>', '<meta charset="utf-8">');
  o.push(
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<meta name="generator" content="${esc(`${ctx.tool.name} ${ctx.tool.version}`)}">`,
    `<title>${esc(`${m.verdict}: bundle verification report${bundleText ? ` — ${bundleText}` : ''}`)}</title>`,
    `<style>${CSS}</style>`,
    '</head>',
    '<body>',
  );
  o.push(
    `<header class="verdict ${m.ok ? 'pass' : 'fail'}">`,
    `<h1>Bundle verification report${bundleText ? `: ${esc(bundleText)}` : ''}</h1>`,
    `<span class="badge" id="verdict">${m.verdict}</span>`,
    `<p>${esc(m.summary)}</p>`,
    '</header>',
  );
  section(
    'facts',
    'What was checked',
    `<table class="facts"><tbody>\n${m.facts.map((f) => `<tr><th scope="row">${spans(f.label)}</th><td>${spans(f.value)}</td></tr>`).join('\n')}\n</tbody></table>`,
  );
  artifacts('images', 'Images', m.images);
  artifacts('charts', 'Charts', m.charts);
  section(
    'files',
    `Files (${m.files.length})`,
    m.files.length === 0
      ? '<p class="none">None.</p>'
      : `<table><thead><tr><th>Status</th><th>Path</th><th>Problems</th></tr></thead><tbody>\n${m.files
          .map((f) => `<tr>${status(f.ok)}<td>${code(f.path)}</td><td>${problems(f.problems)}</td></tr>`)
          .join('\n')}\n</tbody></table>`,
  );
  if (m.parts.length) {
    section(
      'parts',
      `Parts (${m.parts.length})`,
      `<table><thead><tr><th>Status</th><th>Part</th><th>sha256</th><th>Problems</th></tr></thead><tbody>\n${m.parts
        .map(
          (p) =>
            `<tr>${status(p.ok)}<td>${code(p.name)}</td><td>${p.sha256 ? code(p.sha256) : '<span class="none">(not read)</span>'}</td><td>${problems(p.problems)}</td></tr>`,
        )
        .join('\n')}\n</tbody></table>`,
    );
  }
  section(
    'base',
    'Differential base',
    m.base
      ? `<p>${baseSentence(m, code)}</p>`
      : '<p class="none">None: this is a full bundle, it holds every blob its images need.</p>',
  );
  const c = m.contents;
  section(
    'sbom',
    c.sbom ? `SBOM (${c.sbom.components.length} components)` : 'SBOM',
    c.sbom
      ? `<p>${sbomSentence(m, code)}</p><table class="fixed sbom"><thead><tr><th>Type</th><th>Name</th><th>Version</th><th>purl</th></tr></thead><tbody>\n${c.sbom.components
          .map(
            (x) =>
              `<tr><td>${esc(x.type)}</td><td>${code(x.name)}</td><td>${code(x.version)}</td><td>${code(x.purl)}</td></tr>`,
          )
          .join('\n')}\n</tbody></table>`
      : '<p class="none">No readable sbom.cdx.json (the verification above says why, if the bundle failed).</p>',
  );
  section(
    'signatures',
    'Upstream signatures (checked at build time)',
    `<p>${esc(signaturesSentence(m))}</p>${
      c.signatures?.length
        ? `<table><thead><tr><th>Image</th><th>Scheme</th><th>Signed digest</th><th>Vendor key</th><th>Signature manifest</th></tr></thead><tbody>\n${c.signatures
            .map(
              (s) =>
                `<tr><td>${code(s.image)}</td><td>${esc(s.scheme)}</td><td>${code(s.digest)}</td><td>${code(s.key)}</td><td>${code(s.signature)}</td></tr>`,
            )
            .join('\n')}\n</tbody></table>`
        : ''
    }`,
  );
  if (m.imageKeys) {
    const k = m.imageKeys;
    const rows = k.images.flatMap((i) => {
      const st =
        i.status === 'OK'
          ? '<td class="st ok">OK</td>'
          : i.status === 'FAILED'
            ? '<td class="st bad">FAILED</td>'
            : `<td class="st">${esc(i.status)}</td>`;
      if (i.signatures.length === 0)
        return [
          `<tr>${st}<td>${code(i.ref)}</td><td></td><td></td><td></td><td>${problems(i.problems)}</td></tr>`,
        ];
      return i.signatures.map(
        (x) =>
          `<tr>${st}<td>${code(i.ref)}</td><td>${esc(x.scheme)}</td><td>${code(x.digest)}</td><td>${code(x.signature)}</td><td></td></tr>`,
      );
    });
    section(
      'image-key',
      'Upstream signatures (--image-key)',
      `${k.keys.map((x) => `<p>Key ${code(x.file)}: fingerprint ${code(x.fingerprint)}</p>`).join('')}${
        rows.length
          ? `<table><thead><tr><th>Status</th><th>Image</th><th>Scheme</th><th>Signed digest</th><th>Signature manifest</th><th>Problems</th></tr></thead><tbody>\n${rows.join('\n')}\n</tbody></table>`
          : `<p class="none">${esc(IMAGE_KEY_NONE)}</p>`
      }`,
    );
  }
  section(
    'problems',
    `Problems (${m.problems.length})`,
    m.problems.length === 0
      ? '<p class="none">None.</p>'
      : `<table><thead><tr><th>Member</th><th>Kind</th><th>Problem</th></tr></thead><tbody>\n${m.problems
          .map((p) => `<tr><td>${code(p.member)}</td><td>${esc(p.kind)}</td><td>${esc(p.message)}</td></tr>`)
          .join('\n')}\n</tbody></table>`,
  );
  section(
    'recheck',
    'Checking it again by hand',
    `<p>${esc(RECHECK_INTRO)}</p>\n<pre><code>${m.recheck
      .map((l) => (l.startsWith('#') ? `<span class="c">${esc(l)}</span>` : esc(l)))
      .join('\n')}</code></pre>`,
  );
  const date = m.facts.find((f) => f.label[0] === 'Date')?.value ?? [];
  o.push(
    `<footer>Written by ${esc(`${ctx.tool.name} ${ctx.tool.version}`)} on ${spans(date)}. This page is self-contained: it loads nothing and runs no script.</footer>`,
    '</body>',
    '</html>',
    '',
  );
  return o.join('\n');
}
