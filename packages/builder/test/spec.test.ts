import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ExitCode } from '@lading/core';
import { Ajv2020 } from 'ajv/dist/2020.js';
import ajvFormats from 'ajv-formats';
import { parse as parseYaml } from 'yaml';
import {
  parseSpec,
  parseSpecText,
  SpecError,
  specJsonSchema,
  specJsonSchemaText,
} from '../src/lib/spec/index.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SPECS = join(ROOT, 'fixtures/specs');
const VALID = join(SPECS, 'valid');
const INVALID = join(SPECS, 'invalid');

async function problemsOf(file: string): Promise<string[]> {
  try {
    await parseSpec(join(INVALID, file), { displayName: file });
  } catch (err) {
    assert.ok(err instanceof SpecError, `expected SpecError, got ${(err as Error).stack}`);
    assert.equal(err.code, 'SPEC_INVALID');
    assert.equal(err.exitCode, ExitCode.usage);
    return err.problems.map((p) => `${p.file}:${p.line}:${p.column} ${p.path}: ${p.message}`);
  }
  assert.fail(`${file} was accepted`);
}

describe('spec: lading.yaml', () => {
  it('parses and normalises the docs/spec-file.md example', async () => {
    const file = join(VALID, 'lading.yaml');
    const s = await parseSpec(file);
    assert.equal(s.file, file);
    assert.equal(s.dir, VALID);
    assert.equal(s.name, 'shop');
    assert.equal(s.version, '2.4.0');
    assert.deepEqual(s.platforms, ['linux/amd64']);
    assert.deepEqual(
      s.images.map((i) => [i.ref, i.normalized, i.platforms, i.place]),
      [
        ['docker.io/library/nginx:1.27.3', 'docker.io/library/nginx:1.27.3', undefined, `${file}:7`],
        [
          'quay.io/prometheus/node-exporter:v1.8.2',
          'quay.io/prometheus/node-exporter:v1.8.2',
          ['linux/amd64', 'linux/arm64'],
          `${file}:8`,
        ],
        [
          'ghcr.io/acme/api@sha256:0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0',
          'ghcr.io/acme/api@sha256:0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0',
          undefined,
          `${file}:10`,
        ],
      ],
    );
    assert.deepEqual(s.charts[0], {
      name: 'nginx',
      source: { type: 'repo', url: 'https://charts.example.com/stable' },
      version: '^18.1.0',
      versionKind: 'range',
      images: { mode: 'discover' },
      place: `${file}:12`,
    });
    assert.deepEqual(s.charts[1], {
      name: 'podinfo',
      source: {
        type: 'oci',
        ref: 'oci://ghcr.io/stefanprodan/charts/podinfo',
        repository: 'ghcr.io/stefanprodan/charts/podinfo',
      },
      version: '6.7.1',
      versionKind: 'exact',
      images: { mode: 'discover' },
      place: `${file}:16`,
    });
    assert.deepEqual(s.charts[2], {
      name: 'billing',
      source: { type: 'path', path: join(VALID, 'charts/billing'), format: 'dir' },
      version: undefined,
      versionKind: undefined,
      images: { mode: 'list', refs: ['registry.example.com/acme/billing:3.2.0'], places: [`${file}:21`] },
      place: `${file}:19`,
    });
    const web = s.releases[0];
    assert.equal(web?.chart, 'nginx');
    assert.equal(web?.namespace, 'web');
    assert.deepEqual(web?.values, [{ path: 'values/web.yaml', source: join(VALID, 'values/web.yaml') }]);
    assert.deepEqual(Object.keys(web?.profiles ?? {}), ['demo', 'prod-ha']);
    assert.equal(web?.profiles['prod-ha']?.[0]?.source, join(VALID, 'values/web-ha.yaml'));
    assert.deepEqual(s.files, [{ path: 'docs/RUNBOOK.md', source: join(VALID, 'docs/RUNBOOK.md') }]);
  });

  it('accepts a minimal spec; numbers written as versions keep their text', async () => {
    const s = await parseSpec(join(VALID, 'minimal.yaml'));
    assert.deepEqual(s.images, [
      {
        ref: 'busybox:1.36',
        normalized: 'docker.io/library/busybox:1.36',
        place: `${join(VALID, 'minimal.yaml')}:5`,
      },
    ]);
    assert.deepEqual([s.charts, s.releases, s.files, s.platforms], [[], [], [], undefined]);
    const t = await parseSpecText(
      'apiVersion: lading/v1\nname: x\nversion: 1.10\ncharts:\n  - name: p\n    oci: oci://ghcr.io/a/p\n    version: 6.10\n',
      join(VALID, 'inline.yaml'),
    );
    assert.equal(t.version, '1.10');
    assert.equal(t.charts[0]?.version, '6.10');
    assert.equal(t.charts[0]?.versionKind, 'range');
  });

  it('rejects unknown keys with line, column and a suggestion (typo protection)', async () => {
    assert.deepEqual(await problemsOf('typo.yaml'), [
      'typo.yaml:7:5 charts[0].versoin: unknown field "versoin" (did you mean "version"?); allowed: name, repo, oci, path, version, images',
    ]);
  });

  it('rejects a version that is neither a version nor a range', async () => {
    const err = await parseSpec(join(INVALID, 'bad-version.yaml'), { displayName: 'lading.yaml' }).catch(
      (e) => e,
    );
    assert.ok(err instanceof SpecError);
    assert.equal(
      err.message,
      'lading.yaml:10:14 charts[1].version: expected a semver version or range, got "newest please"',
    );
  });

  it('requires exactly one chart source, and a name for repo charts', async () => {
    assert.deepEqual(await problemsOf('sources.yaml'), [
      'sources.yaml:5:5 charts[0]: a chart has exactly one source, this one has repo and oci',
      'sources.yaml:8:5 charts[1]: a chart needs exactly one source: repo (with name), oci or path',
      'sources.yaml:9:5 charts[2]: a chart from a repo needs name (the chart name in the repository)',
    ]);
  });

  it('checks paths (exist, relative, inside the spec folder) and that releases name a chart', async () => {
    const p = await problemsOf('paths.yaml');
    assert.equal(p.length, 5);
    assert.match(p[0] ?? '', /^paths\.yaml:5:11 charts\[0\]\.path: "\.\/charts\/missing" does not exist/);
    assert.equal(p[1], 'paths.yaml:8:12 releases[0].chart: no chart named "nginx" in charts');
    assert.match(
      p[2] ?? '',
      /^paths\.yaml:10:9 releases\[0\]\.values\[0\]: "values\/nope\.yaml" does not exist/,
    );
    assert.match(
      p[3] ?? '',
      /^paths\.yaml:11:9 releases\[0\]\.values\[1\]: "\.\.\/outside\.yaml" is outside/,
    );
    assert.match(p[4] ?? '', /^paths\.yaml:13:5 files\[0\]: "\/etc\/passwd" is absolute/);
  });

  it('lists every type problem at once: apiVersion, names, platforms, union members, release names', async () => {
    const p = await problemsOf('types.yaml');
    assert.deepEqual(
      p.map((x) => x.split(': ')[0]),
      [
        'types.yaml:1:13 apiVersion',
        'types.yaml:2:7 name',
        'types.yaml:4:13 platforms[0]',
        'types.yaml:8:30 images[1].platforms[1]',
        'types.yaml:9:5 images[2]',
        'types.yaml:13:13 charts[0].images',
        'types.yaml:15:11 releases[0].name',
      ],
    );
    const err = await parseSpec(join(INVALID, 'types.yaml')).catch((e) => e);
    assert.match(err.message, /7 problems/);
    assert.match(err.message, /os\/arch\[\/variant\]/);
  });

  it('reports YAML syntax errors with their position', async () => {
    const p = await problemsOf('syntax.yaml');
    assert.ok(p.length >= 1);
    assert.match(p[0] ?? '', /^syntax\.yaml:\d+:\d+ : YAML: /);
    // The line of the unclosed flow sequence or after it, never "0:0" (issue 13: no line number).
    const line = Number(/^syntax\.yaml:(\d+):/.exec(p[0] ?? '')?.[1]);
    assert.ok(line >= 4 && line <= 6, p[0]);
  });

  it('refuses a spec with no images, charts or files (the bundle would be empty)', async () => {
    await assert.rejects(
      parseSpecText('apiVersion: lading/v1\nname: x\nversion: 1.0.0\n', join(VALID, 'empty.yaml')),
      (err: unknown) => {
        assert.ok(err instanceof SpecError);
        assert.equal(err.exitCode, ExitCode.usage);
        assert.match(err.message, /no images, charts or files: the bundle would be empty/);
        return true;
      },
    );
  });

  it('reports invalid references and duplicate chart names after the shape is right', async () => {
    const text = [
      'apiVersion: lading/v1',
      'name: x',
      'version: "1"',
      'images:',
      '  - "Not A Reference!"',
      'charts:',
      '  - name: p',
      '    oci: oci://ghcr.io/a/p:1.0.0',
      '  - name: q',
      '    oci: oci://ghcr.io/a/q',
      '  - name: q',
      '    repo: https://charts.example.com',
      '',
    ].join('\n');
    const err = await parseSpecText(text, join(VALID, 'x.yaml'), { displayName: 'x.yaml' }).catch((e) => e);
    assert.ok(err instanceof SpecError);
    assert.deepEqual(
      err.problems.map((p) => `${p.line}:${p.column} ${p.path}`),
      ['5:5 images[0]', '8:10 charts[0].oci', '11:11 charts[2].name'],
    );
  });

  it('names an unreadable spec file', async () => {
    const err = await parseSpec(join(SPECS, 'nope.yaml')).catch((e) => e);
    assert.ok(err instanceof SpecError);
    assert.match(err.message, /nope\.yaml.*cannot read/);
  });

  describe('JSON Schema for editors', () => {
    it('schema/lading.schema.json is up to date with the zod schema (regenerate: specJsonSchemaText())', async () => {
      const onDisk = await readFile(join(ROOT, 'schema/lading.schema.json'), 'utf8');
      assert.deepEqual(JSON.parse(onDisk), JSON.parse(specJsonSchemaText()));
      const s = specJsonSchema();
      assert.equal(s.$schema, 'https://json-schema.org/draft/2020-12/schema');
      assert.equal(typeof s.description, 'string');
    });

    // An independent JSON Schema validator (ajv, draft 2020-12, formats checked) over the schema
    // file on disk, as an editor would use it: not zod reading back what zod wrote.
    async function validate(doc: unknown): Promise<boolean> {
      const schema = JSON.parse(await readFile(join(ROOT, 'schema/lading.schema.json'), 'utf8')) as object;
      const ajv = new Ajv2020({ strict: true, strictRequired: false, allErrors: true });
      ajvFormats.default(ajv); // a CommonJS module: its plugin is its default export
      return ajv.validate(schema, doc);
    }

    it('accepts the valid fixtures and rejects bad ones', async () => {
      for (const f of ['valid/lading.yaml', 'valid/minimal.yaml', 'demo/lading.yaml']) {
        const doc = parseYaml(await readFile(join(SPECS, f), 'utf8'));
        assert.equal(await validate(doc), true, `${f} failed the JSON Schema`);
      }
      for (const f of ['typo.yaml', 'types.yaml', 'sources.yaml']) {
        const doc = parseYaml(await readFile(join(INVALID, f), 'utf8'));
        assert.equal(await validate(doc), false, `${f} passed the JSON Schema`);
      }
      const noName = {
        apiVersion: 'lading/v1',
        name: 'x',
        version: '1',
        charts: [{ repo: 'https://c.example.com' }],
      };
      assert.equal(await validate(noName), false);
    });
  });
});
