import assert from 'node:assert/strict';
import { copyFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { digestOf, type LadingJson, openBundle } from '@lading/core';
import { type BundleSnapshot, compareBundles, formatDiffText } from '../src/lib/diff/index.ts';
import type { BundleDiff } from '../src/lib/diff/model.ts';
import { type BundleEntry, type Fixture, flipByte, makeFixture, runCli } from './push-helpers.ts';

const D = (c: string) => `sha256:${c.repeat(64)}`;

function lading(p: Partial<LadingJson>): LadingJson {
  return {
    schemaVersion: 1,
    name: 'shop',
    version: '1.0.0',
    created: '2024-05-01T00:00:00Z',
    builder: { name: 'lading', version: '0.1.0' },
    platforms: [],
    images: [],
    charts: [],
    releases: [],
    files: [],
    ...p,
  } as LadingJson;
}

function snapshot(
  l: LadingJson,
  opts: { raw?: unknown; blobs?: Array<[string, number]>; files?: Record<string, string> } = {},
): BundleSnapshot {
  return {
    side: {
      bundle: `${l.name}-${l.version}.tar`,
      name: l.name,
      version: l.version,
      created: l.created,
      verified: false,
      sumsDigest: D(l.version === '1.0.0' ? 'a' : 'b'),
      ...(l.since
        ? {
            since: {
              name: l.since.name,
              version: l.since.version,
              digest: l.since.digest,
              omittedBlobs: l.since.omittedBlobs?.length ?? 0,
            },
          }
        : {}),
    },
    lading: l,
    raw: opts.raw ?? JSON.parse(JSON.stringify(l)),
    blobs: new Map(opts.blobs ?? []),
    readFile: async (p) => (opts.files?.[p] === undefined ? undefined : Buffer.from(opts.files[p] as string)),
  };
}

const img = (ref: string, digest: string, upstream = digest, platforms = ['linux/amd64']) => ({
  ref,
  digest: digest as never,
  upstreamDigest: upstream as never,
  mediaType: 'application/vnd.oci.image.index.v1+json',
  platforms,
  size: 100,
});

describe('diff: compareBundles (the model both views render)', () => {
  it('images added, removed and moved (upstream and bundled), platforms, charts, releases, values, files, bytes', async () => {
    const oldL = lading({
      platforms: ['linux/amd64'],
      images: [
        img('docker.io/library/nginx:1.27.3', D('1')),
        img('docker.io/library/redis:7', D('2')),
        img('quay.io/acme/api:1.0', D('3'), D('4')),
        img('ghcr.io/acme/same:1', D('5')),
      ],
      charts: [
        { name: 'web', version: '1.0.0', source: 'r', digest: D('6') as never, images: [] },
        { name: 'old', version: '0.1.0', source: 'r', digest: D('7') as never, images: [] },
        { name: 'same', version: '2.0.0', source: 'r', digest: D('8') as never, images: [] },
      ],
      releases: [
        { name: 'web', chart: 'web', namespace: 'web', values: ['values/web.yaml'] },
        { name: 'gone', chart: 'old', values: [] },
      ],
      files: [
        { path: 'values/web.yaml', digest: D('9') as never, size: 20 },
        { path: 'docs/RUNBOOK.md', digest: D('c') as never, size: 5 },
      ],
    });
    const newL = lading({
      version: '1.1.0',
      platforms: ['linux/amd64', 'linux/arm64'],
      images: [
        img('docker.io/library/nginx:1.27.3', D('1')),
        img('docker.io/library/nginx:1.27.4', D('d')),
        img('quay.io/acme/api:1.0', D('e'), D('f'), ['linux/amd64', 'linux/arm64']),
        img('ghcr.io/acme/same:1', D('0'), D('5')),
      ],
      charts: [
        { name: 'web', version: '1.1.0', source: 'r', digest: D('a') as never, images: [] },
        { name: 'same', version: '2.0.0', source: 'r', digest: D('b') as never, images: [] },
      ],
      releases: [
        {
          name: 'web',
          chart: 'web',
          namespace: 'web',
          values: ['values/web.yaml'],
          profiles: { ha: ['values/web-ha.yaml'] },
        },
      ],
      files: [
        { path: 'values/web.yaml', digest: D('e') as never, size: 22 },
        { path: 'values/web-ha.yaml', digest: D('f') as never, size: 12 },
      ],
    });
    const d = await compareBundles(
      snapshot(oldL, {
        blobs: [
          [D('1'), 10],
          [D('2'), 20],
          [D('3'), 30],
        ],
        files: { 'values/web.yaml': 'replicas: 1\nimage:\n  tag: 1.0\n' },
      }),
      snapshot(newL, {
        blobs: [
          [D('1'), 10],
          [D('d'), 400],
          [D('e'), 50],
        ],
        files: { 'values/web.yaml': 'replicas: 3\nimage:\n  tag: 1.0\n', 'values/web-ha.yaml': 'ha: true\n' },
      }),
    );
    assert.deepEqual(d.platforms, { added: ['linux/arm64'], removed: [] });
    assert.deepEqual(
      d.images.added.map((i) => i.ref),
      ['docker.io/library/nginx:1.27.4'],
    );
    assert.deepEqual(
      d.images.removed.map((i) => i.ref),
      ['docker.io/library/redis:7'],
    );
    assert.deepEqual(
      d.images.moved.map((m) => [
        m.ref,
        m.old.digest,
        m.new.digest,
        m.old.upstreamDigest,
        m.new.upstreamDigest,
        m.upstreamSame,
      ]),
      [
        ['ghcr.io/acme/same:1', D('5'), D('0'), D('5'), D('5'), true],
        ['quay.io/acme/api:1.0', D('3'), D('e'), D('4'), D('f'), false],
      ],
    );
    assert.deepEqual(d.images.moved[1]?.new.platforms, ['linux/amd64', 'linux/arm64']);
    assert.equal(d.images.unchanged, 1);
    assert.deepEqual(
      d.charts.removed.map((c) => c.name),
      ['old'],
    );
    assert.deepEqual(
      d.charts.changed.map((c) => [c.name, c.old.version, c.new.version]),
      [
        ['same', '2.0.0', '2.0.0'],
        ['web', '1.0.0', '1.1.0'],
      ],
    );
    assert.deepEqual(
      d.releases.removed.map((r) => r.name),
      ['gone'],
    );
    assert.deepEqual(d.releases.changed, [
      { name: 'web', changes: ['profile ha added [values/web-ha.yaml]'] },
    ]);
    assert.deepEqual(
      d.releases.values.map((v) => [v.path, v.status]),
      [
        ['values/web-ha.yaml', 'added'],
        ['values/web.yaml', 'changed'],
      ],
    );
    const patch = d.releases.values[1]?.patch ?? '';
    assert.match(
      patch,
      /^--- a\/values\/web\.yaml\tshop 1\.0\.0\n\+\+\+ b\/values\/web\.yaml\tshop 1\.1\.0\n@@ -1,3 \+1,3 @@\n-replicas: 1\n\+replicas: 3\n image:\n/,
    );
    assert.match(
      d.releases.values[0]?.patch ?? '',
      /^--- \/dev\/null.*\n\+\+\+ b\/values\/web-ha\.yaml.*\n@@ -0,0 \+1(,1)? @@\n\+ha: true\n/,
    );
    assert.deepEqual(
      d.files.added.map((f) => f.path),
      ['values/web-ha.yaml'],
    );
    assert.deepEqual(
      d.files.removed.map((f) => f.path),
      ['docs/RUNBOOK.md'],
    );
    assert.deepEqual(
      d.files.changed.map((f) => f.path),
      ['values/web.yaml'],
    );
    assert.deepEqual(d.bytes, { newBlobs: 2, newBytes: 450, totalBlobs: 3, totalBytes: 460 });
    // Bundles without extras or signature fields (made before them): nothing recorded, no change.
    assert.deepEqual(d.extras, { recorded: { old: false, new: false }, changes: [] });
    assert.deepEqual(d.signatures, { recorded: { old: false, new: false }, changes: [] });

    const text = formatDiffText(d);
    assert.match(text, /Images: 1 added, 1 removed, 2 moved \(1 unchanged\)/);
    assert.match(text, /\+ docker\.io\/library\/nginx:1\.27\.4 {2}sha256:dddddddddddd/);
    assert.match(
      text,
      /~ quay\.io\/acme\/api:1\.0 {2}sha256:333333333333 → sha256:eeeeeeeeeeee\n {6}upstream sha256:444444444444 → sha256:ffffffffffff\n {6}platforms \+linux\/arm64/,
    );
    assert.match(text, /~ web 1\.0\.0 → 1\.1\.0/);
    assert.match(text, /same version, other content/);
    assert.match(text, / {2}-replicas: 1\n {2}\+replicas: 3/);
    assert.match(text, /Bytes: NEW holds 2 blob\(s\), 450 B, that OLD does not/);
    assert.match(text, /Supply-chain extras: no change \(neither bundle records them\)/);
  });

  it('supply-chain extras and upstream signatures where the bundles record them; omitted blobs count as held', async () => {
    const base = lading({ images: [img('docker.io/acme/app:1', D('1'))] });
    const sig = {
      kind: 'sig',
      digest: D('2'),
      subject: D('1'),
      tag: `sha256-${'1'.repeat(64)}.sig`,
      mediaType: 'x',
      size: 1,
    };
    const att = {
      kind: 'att',
      digest: D('3'),
      subject: D('1'),
      tag: `sha256-${'1'.repeat(64)}.att`,
      mediaType: 'x',
      size: 1,
    };
    const s1 = {
      rule: 0,
      digest: D('1'),
      key: D('k'.replace('k', 'a')),
      signature: D('2'),
      scheme: 'cosign',
    };
    const oldRaw = { ...base, images: [{ ...base.images[0], extras: [sig], signatures: [s1] }] };
    const newL = lading({
      version: '1.1.0',
      images: [img('docker.io/acme/app:1', D('1'))],
      since: { name: 'shop', version: '1.0.0', digest: D('a') as never, omittedBlobs: [D('5') as never] },
    });
    const newRaw = { ...newL, images: [{ ...newL.images[0], extras: [sig, att], signatures: [] }] };
    const d = await compareBundles(
      snapshot(
        lading({
          ...base,
          since: { name: 'shop', version: '0.9.0', digest: D('9') as never, omittedBlobs: [D('6') as never] },
        }),
        { raw: oldRaw, blobs: [[D('1'), 5]] },
      ),
      snapshot(newL, {
        raw: newRaw,
        blobs: [
          [D('1'), 5],
          [D('6'), 70],
          [D('7'), 3],
        ],
      }),
    );
    assert.equal(d.newBasedOnOld, true);
    assert.deepEqual(d.extras.recorded, { old: true, new: true });
    assert.deepEqual(
      d.extras.changes.map((c) => [c.ref, c.added.map((e) => e.kind), c.removed.length]),
      [['docker.io/acme/app:1', ['att'], 0]],
    );
    assert.deepEqual(
      d.signatures.changes.map((c) => [c.added.length, c.removed.map((s) => s.scheme)]),
      [[0, ['cosign']]],
    );
    // D('6') was left out of OLD (a differential bundle): it is at the site already, not new.
    assert.deepEqual(d.bytes, { newBlobs: 1, newBytes: 3, totalBlobs: 3, totalBytes: 78 });
    assert.match(formatDiffText(d), /NEW is a differential bundle based on OLD\./);
    assert.match(
      formatDiffText(d),
      /Upstream signatures: 1 image\(s\) changed\n {2}- docker\.io\/acme\/app:1 {2}cosign over sha256:111111111111/,
    );
  });
});

describe('lading-load diff (the CLI, real bundles)', function () {
  this.timeout(180_000);
  let f: Fixture;
  let v1: string;
  let v2: string;
  let v2diff: string;
  const entry = (ref: string) => f.entries.find((e) => e.ref === ref) as BundleEntry;

  before(async () => {
    f = await makeFixture(256 * 1024);
    const vals1 = join(f.dir, 'web-1.yaml');
    const vals2 = join(f.dir, 'web-2.yaml');
    await writeFile(vals1, 'replicas: 1\nresources: {}\n');
    await writeFile(vals2, 'replicas: 2\nresources: {}\n');
    const release = [{ name: 'web', chart: 'plain', namespace: 'web', values: ['values/web.yaml'] }];
    v1 = await f.bundle('v1.tar', {
      entries: [entry('docker.io/demo/app:1.0'), entry('quay.io/demo/legacy:2.0'), f.chart],
      releases: release,
      files: [{ name: 'values/web.yaml', path: vals1 }],
    });
    const v2entries = [entry('docker.io/demo/base-a:1'), entry('ghcr.io/demo/multi:3.0'), f.chart];
    const v2opts = {
      version: '2.0.0',
      entries: v2entries,
      alias: [['docker.io/demo/app:1.0', entry('docker.io/demo/base-a:1')]] as Array<[string, BundleEntry]>,
      releases: release,
      files: [{ name: 'values/web.yaml', path: vals2 }],
    };
    v2 = await f.bundle('v2.tar', v2opts);
    // The same release as a differential bundle on v1: blobs v1 holds are left out.
    const b1 = await openBundle(v1);
    const held = new Set(
      [...b1.members.keys()].filter((m) => m.startsWith('blobs/')).map((m) => `sha256:${m.slice(-64)}`),
    );
    const sums = digestOf(b1.sumsBytes);
    await b1.close();
    const omit = [...new Set(v2entries.flatMap((e) => e.blobs))].filter(
      (b) => held.has(b) && !v2entries.some((e) => e.digest === b),
    );
    v2diff = await f.bundle('v2-since-v1.tar', {
      ...v2opts,
      omit,
      since: { name: 'pushtest', version: '1.0.0', digest: sums },
    });
  });
  after(async () => {
    await f?.cleanup();
  });

  it('--json: images added, removed, moved; values diff; the bytes a differential bundle would carry (exit 0)', async () => {
    const r = await runCli(['diff', v1, v2, '--key', f.pub, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const d = JSON.parse(r.stdout) as BundleDiff;
    assert.equal(d.old.verified && d.new.verified, true);
    assert.deepEqual(
      d.images.added.map((i) => i.ref),
      ['docker.io/demo/base-a:1', 'ghcr.io/demo/multi:3.0'],
    );
    assert.deepEqual(
      d.images.removed.map((i) => i.ref),
      ['quay.io/demo/legacy:2.0'],
    );
    assert.deepEqual(
      d.images.moved.map((m) => [m.ref, m.old.digest, m.new.digest]),
      [
        [
          'docker.io/demo/app:1.0',
          entry('docker.io/demo/app:1.0').digest,
          entry('docker.io/demo/base-a:1').digest,
        ],
      ],
    );
    assert.equal(d.charts.unchanged, 1);
    assert.deepEqual(
      d.files.changed.map((x) => x.path),
      ['values/web.yaml'],
    );
    assert.match(d.releases.values[0]?.patch ?? '', /-replicas: 1\n\+replicas: 2\n resources: \{\}/);
    // Cross-check the byte count with the bundles' own members.
    const [b1, b2] = [await openBundle(v1), await openBundle(v2)];
    let bytes = 0;
    let blobs = 0;
    for (const m of b2.members.values()) {
      if (m.name.startsWith('blobs/') && !b1.members.has(m.name)) {
        bytes += m.size;
        blobs++;
      }
    }
    await b1.close();
    await b2.close();
    assert.ok(blobs > 0);
    assert.equal(d.bytes.newBlobs, blobs);
    assert.equal(d.bytes.newBytes, bytes);
  });

  it('a differential NEW against its base: same changes, same new bytes, and it says OLD is the base', async () => {
    const full = JSON.parse((await runCli(['diff', v1, v2, '--key', f.pub, '--json'])).stdout) as BundleDiff;
    const r = await runCli(['diff', v1, v2diff, '--key', f.pub, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const d = JSON.parse(r.stdout) as BundleDiff;
    assert.equal(d.newBasedOnOld, true);
    assert.deepEqual(d.images, full.images);
    assert.equal(d.bytes.newBytes, full.bytes.newBytes);
    const human = await runCli(['diff', v1, v2diff, '--key', f.pub]);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /NEW is a differential bundle based on OLD\./);
    assert.match(human.stdout, /~ docker\.io\/demo\/app:1\.0 {2}sha256:\w{12} → sha256:\w{12}/);
    assert.match(human.stdout, /\+ ghcr\.io\/demo\/multi:3\.0/);
    assert.match(human.stdout, /- quay\.io\/demo\/legacy:2\.0/);
  });

  it('the same bundle twice: identical; without --key it says so', async () => {
    const r = await runCli(['diff', v1, v1]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /NOT verified \(no --key\)/);
    assert.match(r.stdout, /The bundles are identical/);
  });

  it('--key and a tampered NEW: exit 3 naming it; a missing OLD: exit 2', async () => {
    const bad = join(f.dir, 'bundles', 'v2-bad.tar');
    await copyFile(v2, bad);
    await flipByte(bad, 5000);
    const r = await runCli(['diff', v1, bad, '--key', f.pub]);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /v2-bad\.tar/);
    const m = await runCli(['diff', join(f.dir, 'nope.tar'), v2]);
    assert.equal(m.code, 2, m.stderr);
    assert.match(m.stderr, /nope\.tar/);
  });
});
