/** Running a Lading command for the reliability checks: exit code, time, output; optional kill -9. */
import { spawn } from 'node:child_process';

export interface Ran {
  code: number;
  ms: number;
  stdout: string;
  stderr: string;
  /** true when we sent SIGKILL before the process ended by itself. */
  killed: boolean;
  timedOut: boolean;
}

export interface RunOpts {
  env: NodeJS.ProcessEnv;
  cwd?: string;
  /** SIGKILL the process this many ms after it started. */
  killAtMs?: number;
  /** Called right before the kill (e.g. to look at what the registry holds at that moment). */
  beforeKill?: () => void;
  timeoutMs?: number;
  input?: string;
}

export function run(cmd: string, args: string[], opts: RunOpts): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, args, { env: opts.env, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let killed = false;
    let timedOut = false;
    child.stdout.on('data', (d: Buffer) => {
      stdout = (stdout + d.toString('utf8')).slice(-200_000);
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString('utf8')).slice(-20_000);
    });
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
    const killer =
      opts.killAtMs !== undefined
        ? setTimeout(() => {
            if (child.exitCode === null && child.signalCode === null) {
              opts.beforeKill?.();
              killed = true;
              child.kill('SIGKILL');
            }
          }, opts.killAtMs)
        : undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 600_000);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      if (killer) clearTimeout(killer);
      clearTimeout(timer);
      resolve({
        code: code ?? (signal ? 137 : 1),
        ms: Number(process.hrtime.bigint() - t0) / 1e6,
        stdout,
        stderr,
        killed,
        timedOut,
      });
    });
  });
}

/**
 * What the command said about the failure, for the report: its `Error:` line, or — for the generic
 * "failed verification: N problem(s)" — the first problems listed under it. Work-folder paths become
 * "…/" and 64-hex digests are shortened.
 */
export function lastError(r: Ran): string {
  const clean = (l: string): string =>
    l
      .trim()
      .replace(/\/tmp\/lading-[a-z]+\.[A-Za-z0-9]+\/[^\s:"]*\//g, '…/')
      .replace(/\b([0-9a-f]{12})[0-9a-f]{52}\b/g, '$1…');
  const lines = r.stderr.split('\n');
  const at = lines.findIndex((l) => l.startsWith('Error:'));
  if (at >= 0) {
    const head = clean(lines[at]!);
    if (!/failed verification: \d+ problem/.test(head)) return head.slice(0, 240);
    const problems = lines
      .slice(at + 1)
      .map(clean)
      .filter((l) => l && !l.startsWith('hint:'))
      .slice(0, 2);
    return (problems.length ? problems.join(' · ') : head).slice(0, 240);
  }
  try {
    const j = JSON.parse(r.stdout) as { message?: unknown };
    if (typeof j.message === 'string') return clean(j.message).slice(0, 240);
  } catch {
    // not a --json error document
  }
  const any = `${r.stderr}\n${r.stdout}`
    .split('\n')
    .map(clean)
    .filter((l) => /error|fail|refus|invalid|unsafe/i.test(l));
  return (any[0] ?? '').slice(0, 240);
}
