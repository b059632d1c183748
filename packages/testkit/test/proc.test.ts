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

/**
 * An idle TCP connection to `host`; `closed` resolves when the other end goes away. The registry
 * keeps an idle connection open (no timeout), so it closes when the server's process is gone.
 */
function holdConnection(host: string): Promise<{ closed: Promise<void> }> {
  const [h, p] = host.split(':');
  return new Promise((resolve, reject) => {
    const s = connect({ host: h!, port: Number(p) });
    const closed = new Promise<void>((r) => s.once('close', () => r()));
    s.on('error', () => {});
    s.once('connect', () => {
      s.unref(); // a registry that stays must fail the test by its timeout, not keep mocha alive
      resolve({ closed });
    });
    s.once('error', reject);
  });
}

const fixture = fileURLToPath(new URL('./fixtures/start-and-wait.ts', import.meta.url));

/**
 * Starts a registry in a child Node process and holds a connection to it, then ends the child as
 * `how` says; resolves with the host and the connection's close (the registry gone).
 */
async function startInChild(
  how: 'SIGKILL' | 'exit' | 'throw',
): Promise<{ host: string; closed: Promise<void> }> {
  const child = spawn(process.execPath, ['--conditions=lading-source', fixture, how], {
    stdio: ['pipe', 'pipe', 'ignore'],
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
  const { closed } = await holdConnection(host);
  const exited = new Promise((r) =>
    child.exitCode !== null || child.signalCode !== null ? r(null) : child.once('exit', r),
  );
  // 'exit' and 'throw' end by themselves once told to; SIGKILL leaves no chance to clean up
  if (how === 'SIGKILL') child.kill('SIGKILL');
  else child.stdin.end('end\n');
  await exited;
  return { host, closed };
}

describe('registry processes do not outlive the test process', () => {
  for (const [title, how] of [
    ['when the test process is killed with SIGKILL', 'SIGKILL'],
    ['when the test process exits without stop()', 'exit'],
    ['when the test process dies of an uncaught exception', 'throw'],
  ] as const) {
    it(title, async function () {
      this.timeout(20_000); // the watchdog's TERM, then KILL 2 s later; a registry that stays fails here
      const { host, closed } = await startInChild(how);
      await closed;
      assert.equal(await portOpen(host), false, `registry on ${host} still listening`);
    });
  }
});
