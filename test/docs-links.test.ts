import assert from 'node:assert/strict';
import { readdir, readFile, stat } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The repository owns its documents (issue 11 §4): every relative link in README.md and docs/*.md
 * resolves to a file in the repository (and a `#fragment` to a heading of the Markdown file it
 * names), README.md links nothing outside the repository, and no source, test, script, schema
 * or document points readers at DESIGN.md, a file a clone of the repository does not have.
 */

const root = fileURLToPath(new URL('..', import.meta.url));

interface Link {
  file: string;
  line: number;
  target: string;
}

/** Markdown text without fenced code blocks and inline code (links inside them are not links). */
function prose(text: string): string[] {
  let fenced = false;
  return text.split('\n').map((line) => {
    if (/^\s*(```|~~~)/.test(line)) {
      fenced = !fenced;
      return '';
    }
    return fenced ? '' : line.replace(/`[^`]*`/g, '``');
  });
}

function linksOf(file: string, text: string): Link[] {
  const out: Link[] = [];
  prose(text).forEach((line, i) => {
    for (const m of line.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
      out.push({ file, line: i + 1, target: m[1] as string });
    }
  });
  return out;
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchorsOf(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  let fenced = false;
  for (const line of text.split('\n')) {
    if (/^\s*(```|~~~)/.test(line)) fenced = !fenced;
    const m = fenced ? null : /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const base = (m[1] as string)
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

async function markdownFiles(): Promise<string[]> {
  const docs = (await readdir(join(root, 'docs')))
    .filter((n) => n.endsWith('.md'))
    .map((n) => join('docs', n));
  return ['README.md', ...docs.sort()];
}

async function isFile(path: string): Promise<boolean> {
  return stat(path)
    .then((s) => s.isFile() || s.isDirectory())
    .catch(() => false);
}

/** Text files that may mention other documents: sources, tests, scripts, schema, docs. */
async function textFiles(dir: string, out: string[] = []): Promise<string[]> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.name === 'node_modules' || e.name === 'dist' || e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) await textFiles(p, out);
    else if (/\.(ts|js|md|json|ya?ml|sh)$/.test(e.name) || dirname(p).endsWith(`${sep}scripts`)) out.push(p);
  }
  return out;
}

describe('the repository owns its documents', () => {
  it('every relative link in README.md and docs/ resolves to a file (and heading) in the repository', async () => {
    const broken: string[] = [];
    let checked = 0;
    for (const file of await markdownFiles()) {
      const text = await readFile(join(root, file), 'utf8');
      for (const link of linksOf(file, text)) {
        if (/^[a-z][a-z0-9+.-]*:/i.test(link.target)) continue; // a URL: checked below for README
        checked++;
        const [path = '', fragment] = link.target.split('#');
        const target = path === '' ? join(root, file) : resolve(root, dirname(file), decodeURI(path));
        const where = `${link.file}:${link.line}: ${link.target}`;
        const rel = relative(root, target);
        if (rel.startsWith('..') || rel.startsWith(sep)) {
          broken.push(`${where} points outside the repository`);
          continue;
        }
        if (!(await isFile(target))) {
          broken.push(`${where}: no such file ${rel}`);
          continue;
        }
        if (fragment !== undefined && target.endsWith('.md')) {
          const anchors = anchorsOf(await readFile(target, 'utf8'));
          if (!anchors.has(fragment)) broken.push(`${where}: ${rel} has no heading #${fragment}`);
        }
      }
    }
    assert.ok(checked > 10, `only ${checked} relative links found: is the link pattern still right?`);
    assert.deepEqual(broken, []);
  });

  it('README.md links nothing outside the repository', async () => {
    const text = await readFile(join(root, 'README.md'), 'utf8');
    const outside = linksOf('README.md', text)
      .filter((l) => /^[a-z][a-z0-9+.-]*:/i.test(l.target) || l.target.startsWith('/'))
      .map((l) => `README.md:${l.line}: ${l.target}`);
    assert.deepEqual(outside, []);
  });

  it('links the bundle format specification from the README', async () => {
    const text = await readFile(join(root, 'README.md'), 'utf8');
    assert.ok(
      linksOf('README.md', text).some((l) => l.target === 'docs/bundle-format.md'),
      'README.md does not link docs/bundle-format.md',
    );
  });

  it('nothing points readers at DESIGN.md, which a clone does not have', async () => {
    const files = [
      ...(await textFiles(join(root, 'packages'))),
      ...(await textFiles(join(root, 'scripts'))),
      ...(await textFiles(join(root, 'test'))),
      ...(await textFiles(join(root, 'docs'))),
      ...(await textFiles(join(root, 'schema'))),
      join(root, 'README.md'),
    ];
    const self = fileURLToPath(import.meta.url);
    const hits: string[] = [];
    for (const f of files) {
      if (f === self) continue;
      const lines = (await readFile(f, 'utf8')).split('\n');
      lines.forEach((l, i) => {
        if (l.includes('DESIGN.md')) hits.push(`${relative(root, f)}:${i + 1}: ${l.trim().slice(0, 120)}`);
      });
    }
    assert.ok(files.length > 100, `only ${files.length} files searched`);
    assert.deepEqual(
      hits,
      [],
      'point these at docs/bundle-format.md, docs/spec-file.md or README.md instead',
    );
  });
});
