import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { Spec, Validation } from '@cyclonedx/cyclonedx-library';
import { Header, Parser, type ReadEntry } from 'tar';
import {
  buildSbom,
  entryHeader,
  formatSums,
  InvalidMemberPathError,
  InvalidSumsError,
  type LadingJson,
  parseSums,
  TAR_END_SIZE,
  TarEntrySizeError,
  tarEntrySize,
  tarStream,
} from '../src/bundle/index.ts';
import { digestOf } from '../src/digest/index.ts';

const H1 = 'a'.repeat(64);
const H2 = '0123456789abcdef'.repeat(4);

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of it) out.push(c);
  return Buffer.concat(out);
}

/** Read a tar with node-tar (an independent reader): path, size, mtime, uid, data. */
async function readTar(
  buf: Buffer,
): Promise<Array<{ path: string; size: number; mtime: number; uid: number; mode: number; data: Buffer }>> {
  const out: Array<{ path: string; size: number; mtime: number; uid: number; mode: number; data: Buffer }> =
    [];
  await new Promise<void>((resolve, reject) => {
    const p = new Parser({ strict: true });
    p.on('entry', (e: ReadEntry) => {
      const chunks: Buffer[] = [];
      e.on('data', (c: Buffer) => chunks.push(c));
      e.on('end', () =>
        out.push({
          path: e.path,
          size: e.size,
          mtime: Math.floor((e.mtime?.getTime() ?? 0) / 1000),
          uid: e.uid ?? -1,
          mode: e.mode ?? -1,
          data: Buffer.concat(chunks),
        }),
      );
    });
    p.on('end', () => resolve());
    p.on('error', reject);
    p.on('warn', (code: string, msg: string) => reject(new Error(`${code}: ${msg}`)));
    p.end(buf);
  });
  return out;
}

describe('bundle write units', () => {
  describe('SHA256SUMS', () => {
    it('formats coreutils lines and parses them back', () => {
      const text = formatSums([
        { path: 'oci-layout', hex: H1 },
        { path: 'blobs/sha256/x', hex: H2 },
      ]);
      assert.equal(text, `${H1}  oci-layout\n${H2}  blobs/sha256/x\n`);
      assert.deepEqual(parseSums(text), [
        { hex: H1, path: 'oci-layout', binary: false },
        { hex: H2, path: 'blobs/sha256/x', binary: false },
      ]);
      assert.deepEqual(parseSums(`${H1} *file with spaces\n`), [
        { hex: H1, path: 'file with spaces', binary: true },
      ]);
      assert.deepEqual(parseSums(''), []);
    });

    it('rejects malformed input with the line number', () => {
      const bad: Array<[string, RegExp]> = [
        [`${H1}  a`, /newline/],
        [`${H1}  a\n\n`, /line 2: blank line/],
        [`${H1.toUpperCase()}  a\n`, /line 1/],
        [`${H1.slice(1)}  a\n`, /line 1/],
        [`${H1} a\n`, /line 1/],
        [`${H1}\ta\n`, /line 1/],
        [`${H1}  a\r\n`, /line 1/],
        [`\\${H1}  a\\nb\n`, /line 1/],
        [`${H1}  a\n${H2}  a\n`, /line 2: duplicate path a/],
        [`${H1}  \n`, /line 1/],
      ];
      for (const [text, re] of bad) {
        assert.throws(
          () => parseSums(text, 'SHA256SUMS'),
          (err: unknown) =>
            err instanceof InvalidSumsError && err.code === 'INVALID_SUMS' && re.test(err.message),
          JSON.stringify(text),
        );
      }
      assert.throws(
        () =>
          formatSums([
            { path: 'a', hex: H1 },
            { path: 'a', hex: H2 },
          ]),
        InvalidSumsError,
      );
      assert.throws(() => formatSums([{ path: 'a\nb', hex: H1 }]), InvalidSumsError);
      assert.throws(() => formatSums([{ path: 'a', hex: 'xyz' }]), InvalidSumsError);
    });
  });

  describe('tar writer', () => {
    it('writes ustar headers node-tar reads back, with pax only where needed', async () => {
      const long = `${'d/'.repeat(60)}file.txt`;
      const entries = [
        { path: 'a.txt', size: 3, data: Buffer.from('abc') },
        { path: 'empty', size: 0, data: Buffer.alloc(0) },
        { path: long, size: 5, data: () => Readable.from([Buffer.from('he'), Buffer.from('llo')]) },
        { path: 'ünï.txt', size: 1, data: Buffer.from('u') },
        { path: 'dir', size: 0, data: Buffer.alloc(0), type: 'directory' as const },
      ];
      const tar = await collect(tarStream(entries, { mtime: 1234567890 }));
      const expectedSize = entries.reduce(
        (n, e) => n + tarEntrySize(e.type ? `${e.path}/` : e.path, e.size),
        TAR_END_SIZE,
      );
      assert.equal(tar.length, expectedSize);
      assert.equal(tar.length % 512, 0);
      assert.ok(
        tar.subarray(-1024).every((b) => b === 0),
        'ends with two zero blocks',
      );
      const read = await readTar(tar);
      assert.deepEqual(
        read.map((e) => [e.path, e.size, e.data.toString()]),
        [
          ['a.txt', 3, 'abc'],
          ['empty', 0, ''],
          [long, 5, 'hello'],
          ['ünï.txt', 1, 'u'],
          ['dir/', 0, ''],
        ],
      );
      for (const e of read) {
        assert.equal(e.mtime, 1234567890);
        assert.equal(e.uid, 0);
        assert.equal(e.mode, e.path === 'dir/' ? 0o755 : 0o644);
      }
      // Plain names have no pax header: the first block is the ustar header of a.txt.
      const h = new Header(tar.subarray(0, 512));
      assert.equal(h.path, 'a.txt');
      assert.equal(h.cksumValid, true);
      assert.equal(h.uname, '');
      assert.equal(h.gname, '');
      assert.equal(tar.subarray(257, 263).toString('latin1'), 'ustar\0');
      // No atime/ctime anywhere.
      assert.ok(!tar.includes('atime='));
      assert.ok(!tar.includes('ctime='));
    });

    it('sizes above 8 GiB go in a pax record and a base-256 size field', () => {
      const size = 9 * 2 ** 30 + 7;
      const hdr = entryHeader('blobs/sha256/big', size, 0);
      assert.equal(hdr.length, 3 * 512); // pax header, its records (one block), ustar header
      assert.match(hdr.toString('latin1'), new RegExp(` size=${size}\n`));
      const ustar = new Header(hdr.subarray(hdr.length - 512));
      assert.equal(ustar.size, size);
      assert.equal(ustar.path, 'blobs/sha256/big');
      assert.equal(tarEntrySize('blobs/sha256/big', size), hdr.length + Math.ceil(size / 512) * 512);
    });

    it('fails when a stream yields more or fewer bytes than declared, and rejects unsafe paths', async () => {
      await assert.rejects(
        collect(
          tarStream([{ path: 'x', size: 4, data: () => Readable.from([Buffer.from('abc')]) }], { mtime: 0 }),
        ),
        (err: unknown) => err instanceof TarEntrySizeError && err.actual === 3 && err.expected === 4,
      );
      await assert.rejects(
        collect(
          tarStream([{ path: 'x', size: 2, data: () => Readable.from([Buffer.from('abc')]) }], { mtime: 0 }),
        ),
        TarEntrySizeError,
      );
      await assert.rejects(
        collect(tarStream([{ path: 'x', size: 2, data: Buffer.from('abc') }], { mtime: 0 })),
        TarEntrySizeError,
      );
      for (const p of ['/etc/passwd', '../x', 'a/../b', 'a//b', './a', '', 'a\\b']) {
        await assert.rejects(
          collect(tarStream([{ path: p, size: 0, data: Buffer.alloc(0) }], { mtime: 0 })),
          InvalidMemberPathError,
          p,
        );
      }
    });
  });

  describe('SBOM', () => {
    const lading: LadingJson = {
      schemaVersion: 1,
      name: 'shop',
      version: '2.4.0',
      created: '2024-01-01T00:00:00Z',
      builder: { name: 'lading', version: '0.1.0' },
      platforms: [],
      images: [
        {
          ref: 'docker.io/library/nginx:1.27.3',
          digest: digestOf('nginx'),
          upstreamDigest: digestOf('nginx-up'),
          mediaType: 'application/vnd.oci.image.index.v1+json',
          platforms: ['linux/amd64'],
          size: 10,
        },
        {
          ref: 'localhost:5000/acme/api@' + digestOf('api'),
          digest: digestOf('api'),
          upstreamDigest: digestOf('api'),
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          platforms: [],
          size: 5,
        },
      ],
      charts: [
        {
          name: 'nginx',
          version: '18.1.0',
          source: 'https://charts.example.com/stable',
          digest: digestOf('chart'),
          images: ['docker.io/library/nginx:1.27.3'],
        },
        {
          name: 'podinfo',
          version: '6.7.1',
          source: 'oci://ghcr.io/stefanprodan/charts/podinfo',
          digest: digestOf('podinfo'),
          images: [],
        },
      ],
      releases: [],
      files: [],
    };

    it('is valid against the official CycloneDX JSON schema of the version it declares', async () => {
      const bom = buildSbom(lading, { epoch: 1_700_000_000 });
      // The schema files CycloneDX publishes (shipped by @cyclonedx/cyclonedx-library, with the SPDX
      // and JSF schemas they reference), checked by ajv in the library's strict validator.
      const version = (Spec.Version as Record<string, string>)[`v${bom.specVersion.replace('.', 'dot')}`];
      assert.equal(version, bom.specVersion, `a CycloneDX ${bom.specVersion} schema is shipped`);
      const validator = new Validation.JsonStrictValidator(version as Spec.Version);
      assert.equal(await validator.validate(JSON.stringify(bom)), null);
      // …and the validator does refuse what the schema forbids.
      const broken = { ...bom, components: [{ ...bom.components[0]!, type: 'no-such-type' }] };
      assert.notEqual(await validator.validate(JSON.stringify(broken)), null);
    });

    it('is a deterministic CycloneDX 1.5 document with purls and hashes', () => {
      const bom = buildSbom(lading, { epoch: 1_700_000_000 });
      assert.equal(bom.bomFormat, 'CycloneDX');
      assert.equal(bom.specVersion, '1.5');
      assert.match(
        bom.serialNumber,
        /^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
      );
      assert.equal(bom.metadata.timestamp, '2023-11-14T22:13:20Z');
      assert.deepEqual(buildSbom(lading, { epoch: 1_700_000_000 }), bom);
      assert.notEqual(
        buildSbom({ ...lading, version: '2.4.1' }, { epoch: 1_700_000_000 }).serialNumber,
        bom.serialNumber,
      );
      const nginx = bom.components.find((c) => c.name === 'docker.io/library/nginx')!;
      assert.equal(nginx.type, 'container');
      assert.equal(nginx.version, '1.27.3');
      assert.equal(
        nginx.purl,
        `pkg:oci/nginx@sha256%3A${digestOf('nginx').slice(7)}?repository_url=docker.io/library/nginx&tag=1.27.3`,
      );
      assert.deepEqual(nginx.hashes, [{ alg: 'SHA-256', content: digestOf('nginx').slice(7) }]);
      const api = bom.components.find((c) => c.name === 'localhost:5000/acme/api')!;
      assert.equal(api.version, digestOf('api'));
      // purl-spec's oci type: the last path segment as name, the digest with ':' as %3A, no tag.
      assert.equal(
        api.purl,
        'pkg:oci/api@sha256%3A14c2529eb4498c5d1ffd6915d05bf58a91bdda796af59f41d480d11c099d0479?repository_url=localhost:5000/acme/api',
      );
      const chart = bom.components.find((c) => c.name === 'nginx' && c.type === 'application')!;
      assert.equal(chart.purl, 'pkg:generic/nginx@18.1.0');
      const podinfo = bom.components.find((c) => c.name === 'podinfo')!;
      assert.match(
        podinfo.purl,
        /^pkg:oci\/podinfo@sha256%3A[0-9a-f]{64}\?repository_url=ghcr\.io\/stefanprodan\/charts\/podinfo&tag=6\.7\.1$/,
      );
      const dep = bom.dependencies.find((d) => d.ref === chart['bom-ref'])!;
      assert.deepEqual(dep.dependsOn, [nginx['bom-ref']]);
      const refs = bom.components.map((c) => c['bom-ref']);
      assert.equal(new Set(refs).size, refs.length, 'bom-refs are unique');
    });
  });
});
