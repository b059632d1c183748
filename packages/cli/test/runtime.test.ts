import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RUNTIME_FLAGS } from '../src/runtime.ts';

describe('runtime flags (relaunchWithRuntimeFlags)', () => {
  let dir: string;
  let script: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lading-runtime-'));
    script = join(dir, 'entry.mjs');
    const module = fileURLToPath(new URL('../src/runtime.ts', import.meta.url));
    await writeFile(
      script,
      `import { relaunchWithRuntimeFlags } from ${JSON.stringify(module)};
const before = process.env.LADING_TEST_PID || String(process.pid);
process.env.LADING_TEST_PID = before;
relaunchWithRuntimeFlags(import.meta.url);
console.log(JSON.stringify({ pid: process.pid, first: Number(before), execArgv: process.execArgv, argv: process.argv.slice(2) }));
`,
    );
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const run = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    JSON.parse(
      execFileSync(process.execPath, [...args, script, 'a b', '--json'], {
        encoding: 'utf8',
        env: { ...process.env, LADING_NO_RELAUNCH: '', LADING_TEST_PID: '', ...env },
      }).trim(),
    ) as { pid: number; first: number; execArgv: string[]; argv: string[] };

  it('re-executes Node with the flags, in the same process, keeping arguments and other flags', () => {
    const out = run(['--no-warnings']);
    for (const f of RUNTIME_FLAGS) assert.ok(out.execArgv.includes(f), `${f} in ${out.execArgv.join(' ')}`);
    assert.ok(out.execArgv.includes('--no-warnings'), 'the caller’s own flags stay');
    assert.equal(out.pid, out.first, 'same pid: the process image was replaced, not forked');
    assert.deepEqual(out.argv, ['a b', '--json']);
  });

  it('does nothing when the flags are there, or when LADING_NO_RELAUNCH=1', () => {
    const given = run([...RUNTIME_FLAGS]);
    assert.deepEqual(given.execArgv, [...RUNTIME_FLAGS]);
    const off = run([], { LADING_NO_RELAUNCH: '1' });
    assert.deepEqual(off.execArgv, []);
  });
});
