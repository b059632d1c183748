import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';

function portOpen(host: string): Promise<boolean> {
  const [h, p] = host.split(':');
  return new Promise((resolve) => {
    const s = connect({ host: h!, port: Number(p) });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

async function waitClosed(host: string, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (!(await portOpen(host))) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

const fixture = fileURLToPath(new URL('./fixtures/start-and-wait.ts', import.meta.url));

/** Starts a registry in a child Node process, returns its host once up, then ends the child as `how` says. */
async function startInChild(how: 'SIGKILL' | 'exit' | 'throw'): Promise<string> {
  const child = spawn(process.execPath, ['--conditions=lading-source', fixture, how], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  let out = '';
  const host = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /HOST (\S+)\n/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`fixture exited ${code} before starting: ${out}`)));
  });
  assert.equal(await portOpen(host), true);
  // 'exit' and 'throw' end by themselves; SIGKILL leaves no chance to clean up
  if (how === 'SIGKILL') child.kill('SIGKILL');
  await new Promise((r) =>
    child.exitCode !== null || child.signalCode !== null ? r(null) : child.once('exit', r),
  );
  return host;
}

describe('registry processes do not outlive the test process', () => {
  it('when the test process is killed with SIGKILL', async () => {
    const host = await startInChild('SIGKILL');
    assert.equal(await waitClosed(host, 8000), true, `registry on ${host} still running`);
  });

  it('when the test process exits without stop()', async () => {
    const host = await startInChild('exit');
    assert.equal(await waitClosed(host, 3000), true, `registry on ${host} still running`);
  });

  it('when the test process dies of an uncaught exception', async () => {
    const host = await startInChild('throw');
    assert.equal(await waitClosed(host, 3000), true, `registry on ${host} still running`);
  });
});
