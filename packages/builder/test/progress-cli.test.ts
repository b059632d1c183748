/**
 * What `create` and `split` show while they work (issue 13, "Progress"): on a terminal every bar
 * is left standing at its total, and off a terminal every phase ends with a line at its total;
 * every line says what it counts.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isolatedEnv, runOnTty } from '@lading/testkit';
import { type S3Server, startS3Server } from '@lading/testkit/s3';
import { BIN, ensureBuilt, type Fixture, ROOT, runCli, startFixture } from './helpers.ts';

describe('lading-build progress output (built binary)', function () {
  this.timeout(300_000);
  let fx: Fixture;
  let spec: string;
  const env: NodeJS.ProcessEnv = {};

  before(async () => {
    await ensureBuilt();
    fx = await startFixture({ bigBytes: 3 * 1024 * 1024 });
    spec = join(fx.dir, 'two.yaml');
    await writeFile(
      spec,
      `apiVersion: lading/v1\nname: two\nversion: "1"\nimages:\n  - ${fx.ref('demo/app')}\n  - ${fx.ref('demo/big')}\n`,
    );
  });
  after(async () => {
    await fx?.stop();
  });

  const create = (out: string, cache: string) => [
    'create',
    '--spec',
    spec,
    '--output',
    out,
    '--key',
    fx.key,
    '--plain-http-host',
    fx.registry.host,
    '--cache',
    cache,
  ];

  it('create on a terminal: the pull and write bars stay on screen at their totals', async () => {
    const r = await runOnTty(
      [process.execPath, BIN, ...create(join(fx.dir, 'tty.tar'), join(fx.dir, 'c1'))],
      {
        cwd: ROOT,
        env: { NODE_OPTIONS: '' },
      },
    );
    assert.equal(r.code, 0, r.raw);
    const pull = r.screen.filter((l) => l.startsWith('pulling manifests and configs ['));
    assert.equal(pull.length, 1, `one finished pull bar:\n${r.screen.join('\n')}`);
    assert.match(pull[0] ?? '', /\[#{24}\] (\S+ \S+) \/ \1, 2\/2 images/);
    const write = r.screen.filter((l) => l.startsWith('writing bundle ['));
    assert.equal(write.length, 1, `one finished write bar:\n${r.screen.join('\n')}`);
    assert.match(write[0] ?? '', /\[#{24}\] (\S+ \S+) \/ \1, (\d+)\/\2 members/);
    assert.ok(
      r.screen.some((l) =>
        /^ {2}downloaded from registries: \S+ \S+ \(manifests, configs and layers/.test(l),
      ),
      r.screen.join('\n'),
    );
  });

  it('create off a terminal: each phase ends with a line at its total, each line says what it counts', async () => {
    const cache = join(fx.dir, 'c2');
    const r = await runCli(create(join(fx.dir, 'plain.tar'), cache), env);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stderr.split('\n').filter((l) => /^(pulling|writing)/.test(l));
    for (const l of lines) {
      assert.match(l, /^(pulling manifests and configs|writing bundle): /, 'the label says what is counted');
      assert.doesNotMatch(l, /: 0 B \/ [^,]+, 0\//, `nothing moved yet: no line (${l})`);
      assert.doesNotMatch(l, /, $/, 'no dangling comma');
    }
    const lastPull = lines.filter((l) => l.startsWith('pulling')).at(-1) ?? '';
    assert.match(lastPull, /: (\S+ \S+) \/ \1, 2\/2 images/, r.stderr);
    const lastWrite = lines.filter((l) => l.startsWith('writing')).at(-1) ?? '';
    assert.match(lastWrite, /: (\S+ \S+) \/ \1, (\d+)\/\2 members/, r.stderr);

    // The same build again, from the same cache and beside the first bundle: nothing is
    // downloaded, and the summary says so in the same words.
    const again = await runCli(create(join(fx.dir, 'again.tar'), cache), env);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /^ {2}downloaded from registries: 0 B \(/m, again.stdout);
  });

  it('split shows its progress in parts, and ends at its total', async () => {
    const bundle = join(fx.dir, 'plain.tar');
    const r = await runCli(
      ['split', bundle, '--size', '1MiB', '--output', join(fx.dir, 'parts', 'p.tar')],
      env,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^splitting: (\S+ \S+) \/ \1, 4\/4 parts/m, r.stderr);
    const t = await runOnTty(
      [process.execPath, BIN, 'split', bundle, '--size', '1MiB', '--output', join(fx.dir, 'tparts', 'p.tar')],
      { cwd: ROOT, env: { ...isolatedEnv(), NODE_OPTIONS: '' } },
    );
    assert.equal(t.code, 0, t.raw);
    assert.ok(
      t.screen.some((l) => /^splitting \[#{24}\] (\S+ \S+) \/ \1, 4\/4 parts/.test(l)),
      t.screen.join('\n'),
    );
  });

  it('publish: a bar per object uploaded, at its total; none for hashing or an object already there', async () => {
    let s3: S3Server | undefined;
    try {
      s3 = await startS3Server({ buckets: ['drop'] });
      const s3env = {
        NODE_OPTIONS: '',
        AWS_ACCESS_KEY_ID: s3.accessKeyId,
        AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
        AWS_REGION: s3.region,
        AWS_EC2_METADATA_DISABLED: 'true',
      };
      const args = [
        process.execPath,
        BIN,
        'publish',
        join(fx.dir, 'plain.tar'),
        's3://drop/r/',
        '--endpoint',
        s3.endpoint,
      ];
      const first = await runOnTty(args, { cwd: ROOT, env: s3env });
      assert.equal(first.code, 0, first.raw);
      const bars = first.screen.filter((l) => l.startsWith('uploading '));
      assert.equal(bars.length, 1, first.screen.join('\n'));
      assert.match(bars[0] ?? '', /^uploading r\/plain\.tar \[#{24}\] (\S+ \S+) \/ \1, 1\/1 parts/);
      const again = await runOnTty(args, { cwd: ROOT, env: s3env });
      assert.equal(again.code, 0, again.raw);
      assert.deepEqual(
        again.screen.filter((l) => l.includes('[')),
        [],
        `nothing uploaded, no bar:\n${again.screen.join('\n')}`,
      );
    } finally {
      await s3?.stop();
    }
  });
});
