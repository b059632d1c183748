/**
 * `verify --report FILE.html` read by a real browser: Debian's chromium, headless, renders the
 * page; the DOM it built must hold the verdict and every image, the SBOM, the upstream
 * signatures, the differential base and the shell steps; it must load nothing from anywhere and
 * print to PDF.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Digest, openBundle } from '@lading/core';
import { needs, runCollect } from '@lading/testkit';
import { type BundleEntry, type Fixture, flipByte, makeFixture, runCli } from './push-helpers.ts';

const hasChromium = spawnSync('chromium', ['--version'], { encoding: 'utf8' }).status === 0;

/** Run headless chromium with a fresh profile; resolves with its stdout. */
async function chromium(args: string[]): Promise<string> {
  const profile = await mkdtemp(join(tmpdir(), 'lading-chromium-'));
  try {
    const r = await runCollect('chromium', [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      `--user-data-dir=${profile}`,
      ...args,
    ]);
    if (r.status !== 0) throw new Error(`chromium exit ${r.status}: ${r.stderr}`);
    return r.stdout;
  } finally {
    await rm(profile, { recursive: true, force: true });
  }
}

/** The inner HTML of `<section id="ID">` in a DOM dump. */
function section(dom: string, id: string): string {
  const m = new RegExp(`<section id="${id}">([\\s\\S]*?)</section>`).exec(dom);
  assert.ok(m, `section #${id} in the DOM`);
  return m[1] as string;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

describe('verify --report FILE.html, rendered by headless chromium', function () {
  this.timeout(240_000);
  let f: Fixture;
  let full: string;
  let diff: string;
  let work: string;
  const sigKey = `sha256:${'ab'.repeat(32)}` as Digest;
  const sigManifest = `sha256:${'cd'.repeat(32)}` as Digest;

  before(async function () {
    needs(this, hasChromium, 'chromium');
    f = await makeFixture(256 * 1024);
    work = await mkdtemp(join(tmpdir(), 'lading-report-html-'));
    const app = f.entries.find((e) => e.ref === 'docker.io/demo/app:1.0') as BundleEntry;
    // A signature result as create records it for a `verify:` rule (the test checks it is shown).
    const withSignature = (l: import('@lading/core').LadingJson) => {
      const img = l.images.find((i) => i.ref === app.ref);
      if (img)
        img.signatures = [
          { rule: 0, digest: app.digest as Digest, key: sigKey, signature: sigManifest, scheme: 'cosign' },
        ];
    };
    full = await f.bundle('full.tar', { ladingPatch: withSignature });
    const b = await openBundle(full);
    const { digestOf } = await import('@lading/core');
    const sums = digestOf(b.sumsBytes);
    await b.close();
    const big = f.entries.find((e) => e.ref.includes('demo/big')) as BundleEntry;
    const layer = big.blobs[big.blobs.length - 1] as string;
    diff = await f.bundle('diff.tar', {
      version: '1.1.0',
      omit: [layer],
      since: { name: 'pushtest', version: '1.0.0', digest: sums },
    });
  });
  after(async () => {
    await f?.cleanup();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('PASSED: the verdict, every image and chart, SBOM, signatures and shell steps in the DOM; nothing loaded; prints to PDF', async () => {
    const html = join(work, 'report.html');
    const r = await runCli(['verify', full, '--key', f.pub, '--report', html]);
    assert.equal(r.code, 0, r.stderr);
    const raw = await readFile(html, 'utf8');
    // Self-contained: no script, no external reference of any kind.
    assert.doesNotMatch(raw, /<script|<link|<img|<iframe|\bsrc=|\bhref=|url\(|@import/i);
    const dom = await chromium(['--dump-dom', `file://${html}`]);
    assert.match(dom, /<span class="badge" id="verdict">PASSED<\/span>/);
    const images = section(dom, 'images');
    const imageRefs = f.entries.filter((e) => e.kind === 'image');
    assert.ok(imageRefs.length >= 5);
    for (const e of imageRefs) {
      assert.ok(
        images.includes(
          `<td class="ref"><code>${esc(e.ref)}</code></td><td class="digest"><code>${e.digest}</code></td>`,
        ),
        `${e.ref} in the images table`,
      );
    }
    assert.equal((images.match(/<td class="st ok">OK<\/td>/g) ?? []).length, imageRefs.length);
    assert.ok(section(dom, 'charts').includes(esc(f.chart.ref)));
    const sbom = section(dom, 'sbom');
    assert.match(sbom, new RegExp(`SBOM \\(${imageRefs.length + 1} components\\)`));
    assert.match(sbom, /CycloneDX 1\.5/);
    const sigs = section(dom, 'signatures');
    assert.match(sigs, /1 vendor signature\(s\) were checked at build time/);
    assert.ok(sigs.includes(`<td><code>docker.io/demo/app:1.0</code></td><td>cosign</td>`));
    assert.ok(sigs.includes(sigKey) && sigs.includes(sigManifest));
    assert.match(section(dom, 'base'), /None: this is a full bundle/);
    const steps = section(dom, 'recheck');
    assert.match(steps, /openssl dgst -sha256 -verify .* -signature SHA256SUMS\.sig SHA256SUMS/);
    assert.match(steps, /sha256sum -c --strict SHA256SUMS/);

    const pdf = join(work, 'report.pdf');
    await chromium(['--no-pdf-header-footer', `--print-to-pdf=${pdf}`, `file://${html}`]);
    const head = (await readFile(pdf)).subarray(0, 5).toString('latin1');
    assert.equal(head, '%PDF-');
    assert.ok((await stat(pdf)).size > 10_000);
  });

  it('a differential bundle: the base is named in its own section', async () => {
    const html = join(work, 'diff.html');
    const r = await runCli(['verify', diff, '--key', f.pub, '--report', html]);
    assert.equal(r.code, 0, r.stderr);
    const dom = await chromium(['--dump-dom', `file://${html}`]);
    const base = section(dom, 'base');
    assert.match(
      base,
      /differential bundle: it leaves out 1 blob\(s\) that its base <code>pushtest 1\.0\.0<\/code>/,
    );
    assert.match(section(dom, 'signatures'), /No upstream signature was checked/);
  });

  it('FAILED: a tampered bundle gives a FAILED page naming the member (exit 3)', async () => {
    const bad = join(work, 'bad.tar');
    await copyFile(full, bad);
    await flipByte(bad, 128 * 1024);
    const html = join(work, 'bad.html');
    const r = await runCli(['verify', bad, '--key', f.pub, '--report', html]);
    assert.equal(r.code, 3, r.stderr);
    const dom = await chromium(['--dump-dom', `file://${html}`]);
    assert.match(dom, /<span class="badge" id="verdict">FAILED<\/span>/);
    assert.match(dom, /<header class="verdict fail">/);
    const problems = section(dom, 'problems');
    assert.match(problems, /<code>blobs\/sha256\/[0-9a-f]{64}<\/code>/);
  });

  it('a screenshot renders (the page is not blank)', async () => {
    const html = join(work, 'report.html');
    const png = join(work, 'report.png');
    await chromium(['--hide-scrollbars', '--window-size=1200,1600', `--screenshot=${png}`, `file://${html}`]);
    const b = await readFile(png);
    assert.equal(b.subarray(1, 4).toString('latin1'), 'PNG');
    assert.ok(b.length > 30_000, `${b.length} bytes`);
  });
});
