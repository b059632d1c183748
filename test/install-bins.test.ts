import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

/**
 * Issue 13: running the CLIs meant `pnpm exec` from the repository root. scripts/setup now runs
 * scripts/install-bins, which puts lading-build and lading-load in a user bin folder and says so.
 */
const root = fileURLToPath(new URL('..', import.meta.url));
const pexec = promisify(execFile);

describe('scripts/install-bins: the CLIs on PATH, from any folder', function () {
  this.timeout(120_000);
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lading-bins-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes both wrappers, says where, and they run outside the repository', async () => {
    const bin = join(dir, 'bin');
    const r = await pexec(join(root, 'scripts/install-bins'), [], {
      env: { ...process.env, LADING_BIN_DIR: bin },
    });
    assert.match(r.stdout, new RegExp(`lading-build and lading-load are in ${bin}`));
    assert.match(r.stdout, /not on your PATH; add it/);
    for (const cli of ['lading-build', 'lading-load']) {
      const v = await pexec(join(bin, cli), ['--version'], { cwd: dir });
      assert.match(v.stdout, /@lading\/(builder|loader)\/\d/);
    }
  });
});
