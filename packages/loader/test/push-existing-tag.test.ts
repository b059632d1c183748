import assert from 'node:assert/strict';
import { type RegistryServer, skopeoDigest, startRegistry } from '@lading/testkit';
import type { PushResult } from '../src/lib/push/index.ts';
import {
  type BundleEntry,
  type Fixture,
  makeFixture,
  runCli,
  storedBlobCount,
  storedRepositories,
} from './push-helpers.ts';

/**
 * `push --on-existing-tag overwrite|skip|fail` (`lading-load push --help`) against a real Distribution registry:
 * release 1 is pushed, then release 2 whose `demo/app:1.0` and `demo/legacy:2.0` name other digests.
 */
describe('lading-load push --on-existing-tag', function () {
  this.timeout(180_000);
  let f: Fixture;
  let v1: string;
  let v2: string;
  let reg: RegistryServer;
  const entry = (ref: string) => f.entries.find((e) => e.ref === ref) as BundleEntry;

  before(async () => {
    f = await makeFixture(256 * 1024);
    v1 = await f.bundle('v1.tar', {
      entries: [entry('docker.io/demo/app:1.0'), entry('quay.io/demo/legacy:2.0')],
    });
    // Release 2 re-uses both tags for other content, and adds one image.
    v2 = await f.bundle('v2.tar', {
      version: '2.0.0',
      entries: [
        entry('ghcr.io/demo/multi:3.0'),
        entry('docker.io/demo/base-a:1'),
        entry('docker.io/demo/base-b:1'),
      ],
      alias: [
        ['docker.io/demo/app:1.0', entry('docker.io/demo/base-a:1')],
        ['quay.io/demo/legacy:2.0', entry('docker.io/demo/base-b:1')],
      ],
    });
  });
  after(async () => {
    await f?.cleanup();
  });
  beforeEach(async () => {
    reg = await startRegistry({ mode: 'http' });
    const r = await push(v1);
    assert.equal(r.code, 0, r.stderr);
  });
  afterEach(async () => {
    await reg?.stop();
  });

  const push = (bundle: string, extra: string[] = []) =>
    runCli(['push', bundle, '--key', f.pub, '--registry', `${reg.host}/site`, '--plain-http', ...extra]);
  const at = (path: string) => skopeoDigest(`${reg.host}/site/${path}`, reg);

  it('fail: exit 4 naming every moved tag, before anything is written', async () => {
    const repos = await storedRepositories(reg);
    const blobs = await storedBlobCount(reg);
    const r = await push(v2, ['--on-existing-tag', 'fail']);
    assert.equal(r.code, 4, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(`${reg.host}/site/demo/app:1\\.0 is ${entry('docker.io/demo/app:1.0').digest}`),
    );
    assert.match(
      r.stderr,
      new RegExp(`${reg.host}/site/demo/legacy:2\\.0 is ${entry('quay.io/demo/legacy:2.0').digest}`),
    );
    assert.match(r.stderr, /Nothing was pushed/);
    assert.deepEqual(await storedRepositories(reg), repos);
    assert.equal(await storedBlobCount(reg), blobs);
    assert.equal(await at('demo/app:1.0'), entry('docker.io/demo/app:1.0').digest);
  });

  it('fail with no conflict pushes as usual', async () => {
    const r = await push(v1, ['--on-existing-tag', 'fail', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual((JSON.parse(r.stdout) as PushResult).summary.existingTags, []);
  });

  it('skip: keeps the target tags, pushes the rest and reports what it kept', async () => {
    const r = await push(v2, ['--on-existing-tag', 'skip', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const res = JSON.parse(r.stdout) as PushResult;
    assert.deepEqual(
      res.summary.existingTags.map((t) => [t.target, t.existing, t.bundled, t.action]).sort(),
      [
        [
          `${reg.host}/site/demo/app:1.0`,
          entry('docker.io/demo/app:1.0').digest,
          entry('docker.io/demo/base-a:1').digest,
          'skip',
        ],
        [
          `${reg.host}/site/demo/legacy:2.0`,
          entry('quay.io/demo/legacy:2.0').digest,
          entry('docker.io/demo/base-b:1').digest,
          'skip',
        ],
      ],
    );
    const app = res.items.find((i) => i.source === 'docker.io/demo/app:1.0');
    assert.deepEqual([app?.status, app?.existingTag?.action], ['skipped', 'skip']);
    assert.equal(await at('demo/app:1.0'), entry('docker.io/demo/app:1.0').digest);
    assert.equal(await at('demo/legacy:2.0'), entry('quay.io/demo/legacy:2.0').digest);
    assert.equal(await at('demo/multi:3.0'), entry('ghcr.io/demo/multi:3.0').digest);
    // The human summary does not count kept tags as "already there".
    const human = await push(v2, ['--on-existing-tag', 'skip']);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /, 2 left out \(--on-existing-tag skip\)/);
    assert.match(human.stdout, new RegExp(`tag kept: ${reg.host}/site/demo/app:1\\.0 `));
  });

  it('overwrite (the default): moves the tags and lists each move, in the summary and in --json', async () => {
    const human = await push(v2, ['--dry-run']);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, new RegExp(`tag would move: ${reg.host}/site/demo/app:1\\.0 `));
    const r = await push(v2, ['--json']);
    assert.equal(r.code, 0, r.stderr);
    const res = JSON.parse(r.stdout) as PushResult;
    assert.deepEqual(res.summary.existingTags.map((t) => [t.target, t.action]).sort(), [
      [`${reg.host}/site/demo/app:1.0`, 'overwrite'],
      [`${reg.host}/site/demo/legacy:2.0`, 'overwrite'],
    ]);
    const app = res.items.find((i) => i.source === 'docker.io/demo/app:1.0');
    assert.deepEqual(
      [app?.status, app?.existingTag?.digest],
      ['pushed', entry('docker.io/demo/app:1.0').digest],
    );
    assert.equal(await at('demo/app:1.0'), entry('docker.io/demo/base-a:1').digest);
    assert.equal(await at('demo/legacy:2.0'), entry('docker.io/demo/base-b:1').digest);
    // The human summary names each moved tag too.
    const again = await push(v1);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, new RegExp(`tag moved: ${reg.host}/site/demo/app:1\\.0 `));
  });
});
