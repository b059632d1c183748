import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import {
  classifyVersionConstraint,
  closest,
  formatReference,
  imageGlobProblem,
  imageKeyFromPem,
  parseChartYaml,
  parseReference,
  readChartArchive,
  withDefaultTag,
} from '@lading/core';
import { type Document, isPair, isScalar, LineCounter, parseDocument, visit } from 'yaml';
import type { z } from 'zod';
import { SpecError, type SpecProblem } from './errors.ts';
import { formatPath, type PathSegment, positionOf } from './positions.ts';
import { KNOWN_KEYS, type RawSpec, specSchema } from './schema.ts';
import type {
  Spec,
  SpecChart,
  SpecChartSource,
  SpecFile,
  SpecImage,
  SpecRelease,
  SpecVerifyRule,
} from './types.ts';

/** Specs are small; anything larger is refused before parsing. */
export const MAX_SPEC_BYTES = 1024 * 1024;

export interface ParseSpecOptions {
  /** How the file is named in messages (default: the path as given). */
  displayName?: string;
}

class SpecProblems {
  readonly list: SpecProblem[] = [];
  readonly file: string;
  private readonly doc: Document | undefined;
  private readonly lines: LineCounter | undefined;
  constructor(file: string, doc?: Document, lines?: LineCounter) {
    this.file = file;
    this.doc = doc;
    this.lines = lines;
  }
  add(path: readonly PathSegment[], message: string, opts: { key?: boolean } = {}): void {
    const pos =
      this.doc && this.lines ? positionOf(this.doc, this.lines, path, opts) : { line: 0, column: 0 };
    this.list.push({ file: this.file, ...pos, path: formatPath(path), message });
  }
  /** `lading.yaml:12`: the file and line of a path, for messages after parsing (the file alone when unknown). */
  place(path: readonly PathSegment[]): string {
    const pos = this.doc && this.lines ? positionOf(this.doc, this.lines, path) : undefined;
    return pos && pos.line > 0 ? `${this.file}:${pos.line}` : this.file;
  }
  throwIfAny(): void {
    if (this.list.length === 0) return;
    this.list.sort((a, b) => a.line - b.line || a.column - b.column || (a.path < b.path ? -1 : 1));
    throw new SpecError(this.file, this.list);
  }
}

function knownKeysAt(path: readonly PathSegment[]): string[] {
  if (path.length === 0) return KNOWN_KEYS.spec;
  if (path[0] === 'images') return KNOWN_KEYS.image;
  if (path[0] === 'charts') return KNOWN_KEYS.chart;
  if (path[0] === 'releases') return KNOWN_KEYS.release;
  if (path[0] === 'verify') return KNOWN_KEYS.verify;
  return [];
}

function valueAt(root: unknown, path: readonly PathSegment[]): unknown {
  let v = root;
  for (const seg of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string | number, unknown>)[seg];
  }
  return v;
}

type Issue = z.core.$ZodIssue;

/** Turn zod issues into located problems; for unions, report the branch that fits the value's kind. */
function reportIssues(
  issues: readonly Issue[],
  base: readonly PathSegment[],
  raw: unknown,
  problems: SpecProblems,
): void {
  for (const issue of issues) {
    const path = [...base, ...(issue.path as PathSegment[])];
    if (issue.code === 'unrecognized_keys') {
      const known = knownKeysAt(path);
      for (const k of issue.keys) {
        const close = closest(k, known);
        problems.add(
          [...path, k],
          `unknown field "${k}"${close ? ` (did you mean "${close}"?)` : ''}; allowed: ${known.join(', ')}`,
          { key: true },
        );
      }
      continue;
    }
    if (issue.code === 'invalid_union') {
      const branches = issue.errors;
      const fits = branches.filter((b) => !b.some((i) => i.code === 'invalid_type' && i.path.length === 0));
      const value = valueAt(raw, path);
      if (fits.length >= 1) {
        reportIssues(fits[0] as Issue[], path, raw, problems);
      } else if (path.length === 3 && path[0] === 'charts' && path[2] === 'images') {
        problems.add(
          path,
          `expected 'discover', 'none' or a list of image references, got ${JSON.stringify(value)}`,
        );
      } else if (path[0] === 'images') {
        problems.add(path, 'expected an image reference or {ref, platforms}');
      } else {
        problems.add(path, issue.message);
      }
      continue;
    }
    if (issue.code === 'invalid_value' && path.length === 3 && path[0] === 'charts' && path[2] === 'images') {
      problems.add(
        path,
        `expected 'discover', 'none' or a list of image references, got ${JSON.stringify(valueAt(raw, path))}`,
      );
      continue;
    }
    if (issue.code === 'invalid_type' && issue.input === undefined) {
      problems.add(path, `required field is missing (${issue.expected})`);
      continue;
    }
    problems.add(path, issue.message);
  }
}

/** Numbers written as versions (`version: 6.7`) are kept as their text, not turned into 6.7 or 6. */
function keepVersionText(doc: Document, text: string): void {
  visit(doc, {
    Pair(_, pair) {
      if (!isPair(pair) || !isScalar(pair.key) || pair.key.value !== 'version') return;
      const v = pair.value;
      if (isScalar(v) && typeof v.value === 'number' && v.range) {
        v.value = text.slice(v.range[0], v.range[1]).trim();
      }
    },
  });
}

interface Ctx {
  dir: string;
  problems: SpecProblems;
}

/** A relative path that must exist inside the spec folder. */
async function localPath(
  ctx: Ctx,
  p: string,
  path: readonly PathSegment[],
  want: 'file' | 'any',
): Promise<{ rel: string; abs: string; isDir: boolean } | undefined> {
  if (isAbsolute(p)) {
    ctx.problems.add(path, `"${p}" is absolute; write it relative to the spec's folder`);
    return undefined;
  }
  const abs = resolve(ctx.dir, p);
  const rel = relative(ctx.dir, abs);
  if (rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
    ctx.problems.add(path, `"${p}" is outside the spec's folder (${ctx.dir})`);
    return undefined;
  }
  const st = await stat(abs).catch(() => undefined);
  if (!st) {
    ctx.problems.add(path, `"${p}" does not exist (looked for ${abs})`);
    return undefined;
  }
  if (want === 'file' && !st.isFile()) {
    ctx.problems.add(path, `"${p}" is not a file`);
    return undefined;
  }
  return { rel: rel.split(sep).join('/'), abs, isDir: st.isDirectory() };
}

async function specFile(ctx: Ctx, p: string, path: readonly PathSegment[]): Promise<SpecFile | undefined> {
  const r = await localPath(ctx, p, path, 'file');
  return r ? { path: r.rel, source: r.abs } : undefined;
}

function checkRef(ctx: Ctx, ref: string, path: readonly PathSegment[]): string | undefined {
  try {
    return formatReference(withDefaultTag(parseReference(ref)));
  } catch (err) {
    ctx.problems.add(path, `"${ref}" is not a valid image reference: ${(err as Error).message}`);
    return undefined;
  }
}

async function localChartName(abs: string, isDir: boolean): Promise<string> {
  if (isDir) {
    const text = await readFile(resolve(abs, 'Chart.yaml'), 'utf8');
    return parseChartYaml(text, abs).name;
  }
  return (await readChartArchive(createReadStream(abs), { source: abs })).metadata.name;
}

async function normaliseChart(
  ctx: Ctx,
  c: NonNullable<RawSpec['charts']>[number],
  i: number,
): Promise<SpecChart | undefined> {
  const at = (...rest: PathSegment[]): PathSegment[] => ['charts', i, ...rest];
  const given = (['repo', 'oci', 'path'] as const).filter((k) => c[k] !== undefined);
  if (given.length !== 1) {
    ctx.problems.add(
      at(),
      given.length === 0
        ? 'a chart needs exactly one source: repo (with name), oci or path'
        : `a chart has exactly one source, this one has ${given.join(' and ')}`,
    );
    return undefined;
  }
  let source: SpecChartSource | undefined;
  let name = c.name;
  if (c.repo !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(c.repo);
    } catch {
      // reported below
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      ctx.problems.add(
        at('repo'),
        c.repo.startsWith('oci://')
          ? 'an oci:// chart goes in the oci field'
          : `expected an http(s) URL of a chart repository, got "${c.repo}"`,
      );
    } else if (url.username || url.password) {
      ctx.problems.add(
        at('repo'),
        'credentials do not go in the spec; use flags, the environment or a credentials file',
      );
    } else {
      source = { type: 'repo', url: c.repo };
    }
    if (name === undefined)
      ctx.problems.add(at(), 'a chart from a repo needs name (the chart name in the repository)');
  } else if (c.oci !== undefined) {
    if (!c.oci.startsWith('oci://')) {
      ctx.problems.add(at('oci'), `expected oci://host/path/chart, got "${c.oci}"`);
    } else {
      const repository = c.oci.slice('oci://'.length).replace(/\/+$/, '');
      try {
        const r = parseReference(repository);
        if (r.tag !== undefined || r.digest !== undefined) {
          ctx.problems.add(at('oci'), 'put the chart version in version, not in the oci reference');
        } else {
          source = { type: 'oci', ref: c.oci, repository: `${r.registry}/${r.repository}` };
          name ??= r.repository.slice(r.repository.lastIndexOf('/') + 1);
        }
      } catch (err) {
        ctx.problems.add(at('oci'), `"${c.oci}" is not a valid OCI reference: ${(err as Error).message}`);
      }
    }
  } else if (c.path !== undefined) {
    const r = await localPath(ctx, c.path, at('path'), 'any');
    if (r) {
      const isArchive = !r.isDir;
      if (isArchive && !/\.(tgz|tar\.gz)$/.test(r.abs)) {
        ctx.problems.add(at('path'), `"${c.path}" is neither a chart folder nor a .tgz archive`);
      } else {
        source = { type: 'path', path: r.abs, format: r.isDir ? 'dir' : 'archive' };
        if (name === undefined) {
          try {
            name = await localChartName(r.abs, r.isDir);
          } catch (err) {
            ctx.problems.add(at('path'), `cannot read the chart at "${c.path}": ${(err as Error).message}`);
          }
        }
      }
    }
  }
  let versionKind: SpecChart['versionKind'];
  if (c.version !== undefined) {
    versionKind = classifyVersionConstraint(c.version);
    if (!versionKind)
      ctx.problems.add(at('version'), `expected a semver version or range, got "${c.version}"`);
  }
  let images: SpecChart['images'] = { mode: 'discover' };
  if (Array.isArray(c.images)) {
    const refs: string[] = [];
    const places: string[] = [];
    c.images.forEach((ref, j) => {
      if (!checkRef(ctx, ref, at('images', j))) return;
      refs.push(ref);
      places.push(ctx.problems.place(at('images', j)));
    });
    images = { mode: 'list', refs, places };
  } else if (c.images === 'none') {
    images = { mode: 'none' };
  }
  if (!source || name === undefined) return undefined;
  return { name, source, version: c.version, versionKind, images, place: ctx.problems.place(at()) };
}

/**
 * Validate and normalise a parsed spec document. Everything wrong is collected and thrown at
 * once as a SpecError (exit 2), each problem with file, line:column and field path.
 */
async function normalise(raw: RawSpec, file: string, ctx: Ctx): Promise<Spec> {
  const images: SpecImage[] = [];
  const seenImages = new Map<string, number>();
  (raw.images ?? []).forEach((img, i) => {
    const ref = typeof img === 'string' ? img : img.ref;
    const path: PathSegment[] = typeof img === 'string' ? ['images', i] : ['images', i, 'ref'];
    const normalized = checkRef(ctx, ref, path);
    if (!normalized) return;
    const prev = seenImages.get(normalized);
    if (prev !== undefined) {
      ctx.problems.add(path, `"${ref}" is listed twice (also images[${prev}])`);
      return;
    }
    seenImages.set(normalized, i);
    const out: SpecImage = { ref, normalized, place: ctx.problems.place(['images', i]) };
    if (typeof img !== 'string' && img.platforms) out.platforms = img.platforms;
    if (typeof img !== 'string' && img.extras !== undefined) out.extras = img.extras;
    images.push(out);
  });

  const charts: SpecChart[] = [];
  const chartIndex = new Map<string, number>();
  const rawCharts = raw.charts ?? [];
  for (let i = 0; i < rawCharts.length; i++) {
    const c = await normaliseChart(ctx, rawCharts[i] as NonNullable<RawSpec['charts']>[number], i);
    if (!c) continue;
    const prev = chartIndex.get(c.name);
    if (prev !== undefined) {
      ctx.problems.add(
        ['charts', i, rawCharts[i]?.name !== undefined ? 'name' : 'path'],
        `two charts are named "${c.name}" (also charts[${prev}]); give one a different name`,
      );
      continue;
    }
    chartIndex.set(c.name, i);
    charts.push(c);
  }

  const releases: SpecRelease[] = [];
  const releaseNames = new Map<string, number>();
  const rawReleases = raw.releases ?? [];
  for (let i = 0; i < rawReleases.length; i++) {
    const r = rawReleases[i] as NonNullable<RawSpec['releases']>[number];
    const prev = releaseNames.get(r.name);
    if (prev !== undefined)
      ctx.problems.add(
        ['releases', i, 'name'],
        `release "${r.name}" is defined twice (also releases[${prev}])`,
      );
    releaseNames.set(r.name, i);
    if (!chartIndex.has(r.chart) && !rawCharts.some((c) => c.name === r.chart)) {
      const names = [...chartIndex.keys()];
      ctx.problems.add(
        ['releases', i, 'chart'],
        `no chart named "${r.chart}" in charts${names.length ? ` (charts: ${names.join(', ')})` : ''}`,
      );
    }
    const values: SpecFile[] = [];
    for (const [j, v] of (r.values ?? []).entries()) {
      const f = await specFile(ctx, v, ['releases', i, 'values', j]);
      if (f) values.push(f);
    }
    const profiles: Record<string, SpecFile[]> = {};
    for (const [pname, list] of Object.entries(r.profiles ?? {})) {
      profiles[pname] = [];
      for (const [j, v] of list.entries()) {
        const f = await specFile(ctx, v, ['releases', i, 'profiles', pname, j]);
        if (f) profiles[pname].push(f);
      }
    }
    releases.push({ name: r.name, chart: r.chart, namespace: r.namespace, values, profiles });
  }

  const files: SpecFile[] = [];
  for (const [i, p] of (raw.files ?? []).entries()) {
    const f = await specFile(ctx, p, ['files', i]);
    if (f) files.push(f);
  }

  const verify: SpecVerifyRule[] = [];
  for (const [i, rule] of (raw.verify ?? []).entries()) {
    rule.images.forEach((g, j) => {
      const why = imageGlobProblem(g);
      if (why) ctx.problems.add(['verify', i, 'images', j], why);
    });
    const keys: SpecFile[] = [];
    for (const [j, k] of rule.keys.entries()) {
      const f = await specFile(ctx, k, ['verify', i, 'keys', j]);
      if (!f) continue;
      try {
        imageKeyFromPem(await readFile(f.source, 'utf8'), k);
        keys.push(f);
      } catch (err) {
        ctx.problems.add(['verify', i, 'keys', j], (err as Error).message);
      }
    }
    verify.push({ index: i, images: rule.images, keys });
  }

  if (images.length === 0 && (raw.charts ?? []).length === 0 && (raw.files ?? []).length === 0) {
    ctx.problems.add([], 'the spec lists no images, charts or files: the bundle would be empty', {
      key: true,
    });
  }
  ctx.problems.throwIfAny();
  return {
    extras: raw.extras ?? true,
    verify,
    file,
    dir: ctx.dir,
    apiVersion: raw.apiVersion,
    name: raw.name,
    version: raw.version,
    platforms: raw.platforms,
    images,
    charts,
    releases,
    files,
  };
}

/**
 * Parse and validate spec text. `file` locates relative paths (they resolve against its folder)
 * and names the file in messages.
 *
 * @throws SpecError listing every problem, each with file, line:column and field path
 */
export async function parseSpecText(text: string, file: string, opts: ParseSpecOptions = {}): Promise<Spec> {
  const display = opts.displayName ?? file;
  const abs = resolve(file);
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const problems = new SpecProblems(display, doc, lines);
  if (doc.errors.length > 0) {
    for (const e of doc.errors) {
      // linePos is filled in only with prettyErrors; the offset is always there.
      const pos = e.linePos?.[0] ?? (e.pos?.[0] !== undefined ? lines.linePos(e.pos[0]) : undefined);
      problems.list.push({
        file: display,
        line: pos?.line ?? 0,
        column: pos?.col ?? 0,
        path: '',
        message: `YAML: ${e.message.split('\n')[0]}`,
      });
    }
    problems.throwIfAny();
  }
  keepVersionText(doc, text);
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    problems.add([], `YAML: ${(err as Error).message}`);
    problems.throwIfAny();
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    problems.add([], 'expected a YAML mapping with apiVersion: lading/v1, name, version, …');
    problems.throwIfAny();
  }
  const r = specSchema.safeParse(raw);
  if (!r.success) {
    reportIssues(r.error.issues, [], raw, problems);
    problems.throwIfAny();
  }
  return normalise(r.data as RawSpec, abs, { dir: dirname(abs), problems });
}

/** Read, parse and validate a spec file (lading.yaml). */
export async function parseSpec(file: string, opts: ParseSpecOptions = {}): Promise<Spec> {
  const display = opts.displayName ?? file;
  let text: string;
  try {
    const st = await stat(file);
    if (st.size > MAX_SPEC_BYTES) {
      throw new SpecError(display, [
        { file: display, line: 0, column: 0, path: '', message: `larger than ${MAX_SPEC_BYTES} bytes` },
      ]);
    }
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (err instanceof SpecError) throw err;
    throw new SpecError(display, [
      {
        file: display,
        line: 0,
        column: 0,
        path: '',
        message: `cannot read the spec: ${(err as Error).message}`,
      },
    ]);
  }
  return parseSpecText(text, file, { ...opts, displayName: display });
}
