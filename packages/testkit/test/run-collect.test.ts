import assert from 'node:assert/strict';
import { runCollect } from '../src/index.ts';

describe('runCollect', () => {
  it('collects stdout and stderr apart, with the exit status', async () => {
    const r = await runCollect('sh', ['-c', 'printf out; printf err >&2; exit 3']);
    assert.deepEqual(r, { status: 3, signal: null, stdout: 'out', stderr: 'err' });
  });

  it('feeds input on stdin and closes it', async () => {
    const r = await runCollect('sh', ['-c', 'cat; echo done'], { input: 'hello\n' });
    assert.equal(r.status, 0);
    assert.equal(r.stdout, 'hello\ndone\n');
  });

  it('closes stdin at once without input', async () => {
    const r = await runCollect('sh', ['-c', 'cat; echo done']);
    assert.equal(r.stdout, 'done\n');
  });

  it('passes cwd and env', async () => {
    const r = await runCollect('sh', ['-c', 'pwd; echo "$X"'], {
      cwd: '/',
      env: { X: 'y', PATH: process.env.PATH },
    });
    assert.equal(r.stdout, '/\ny\n');
  });

  it('names the signal a killed child died of', async () => {
    const r = await runCollect('sh', ['-c', 'kill -KILL $$']);
    assert.equal(r.status, null);
    assert.equal(r.signal, 'SIGKILL');
  });

  it('survives a child that exits without reading its input', async () => {
    const r = await runCollect('true', [], { input: 'x'.repeat(1 << 20) });
    assert.equal(r.status, 0);
  });

  it('rejects when the command cannot be started', async () => {
    await assert.rejects(runCollect('/nonexistent/lading-no-such-command', []), { code: 'ENOENT' });
  });
});
