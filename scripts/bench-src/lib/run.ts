/**
 * Running and measuring processes: wall time (monotonic clock around the process), peak RSS and exit
 * status from GNU time (`/usr/bin/time -v`), and an optional disk sampler while the process runs.
 */
import { spawn } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { lstat, readdir, readFile, rm, statfs } from 'node:fs/promises';
import { join } from 'node:path';

export const GNU_TIME = '/usr/bin/time';

export interface Step {
  label: string;
  wallMs: number;
  /** Peak resident set size of the process (and of its largest waited-for descendant), KiB. */
  maxRssKb: number;
  exitCode: number;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Where stdout goes (default: discarded). */
  stdoutFile?: string;
  /** Where stderr goes (default: kept in memory, last 64 KiB). */
  stderrFile?: string;
  /** Written to stdin, then closed. */
  input?: string;
  /** Exit codes that are not an error (default [0]). */
  okCodes?: number[];
  label?: string;
  /** Called every `sampleMs` while the process runs. */
  sample?: () => Promise<void>;
  sampleMs?: number;
  /** Kill the process after this many ms (SIGKILL). */
  killAfterMs?: number;
  timeoutMs?: number;
}

export class CommandError extends Error {
  readonly step: Step;
  readonly stderr: string;
  constructor(cmd: string, step: Step, stderr: string) {
    super(`${cmd} exited ${step.exitCode}:\n${stderr.slice(-4000)}`);
    this.step = step;
    this.stderr = stderr;
  }
}

function parseTime(text: string): { rssKb: number; exit: number | undefined; signal: number | undefined } {
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(text);
  const exit = /Exit status: (\d+)/.exec(text);
  const sig = /Command terminated by signal (\d+)/.exec(text);
  return {
    rssKb: rss ? Number(rss[1]) : 0,
    exit: exit ? Number(exit[1]) : undefined,
    signal: sig ? Number(sig[1]) : undefined,
  };
}

let seq = 0;

/** Runs `cmd args…` under GNU time; resolves with its measurements, rejects unless the exit code is ok. */
export async function measure(
  cmd: string,
  args: string[],
  opts: RunOptions & { tmp: string },
): Promise<Step> {
  const timeFile = join(opts.tmp, `time-${process.pid}-${++seq}.txt`);
  const stdout = opts.stdoutFile ? createWriteStream(opts.stdoutFile) : undefined;
  const stderrFile = opts.stderrFile ? createWriteStream(opts.stderrFile) : undefined;
  let stderr = '';
  const t0 = process.hrtime.bigint();
  const child = spawn(GNU_TIME, ['-v', '-o', timeFile, cmd, ...args], {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    stdio: ['pipe', stdout ? 'pipe' : 'ignore', 'pipe'],
  });
  if (stdout) child.stdout!.pipe(stdout);
  child.stderr!.on('data', (d: Buffer) => {
    stderrFile?.write(d);
    stderr = (stderr + d.toString('utf8')).slice(-65536);
  });
  child.stdin!.on('error', () => {});
  child.stdin!.end(opts.input ?? '');
  let sampling = true;
  const sampler = (async () => {
    if (!opts.sample) return;
    while (sampling) {
      await opts.sample().catch(() => {});
      await new Promise((r) => setTimeout(r, opts.sampleMs ?? 250));
    }
  })();
  const killer =
    opts.killAfterMs !== undefined ? setTimeout(() => killTree(child.pid), opts.killAfterMs) : undefined;
  const timeout = setTimeout(() => killTree(child.pid), opts.timeoutMs ?? 3_600_000);
  const code = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c, s) => resolve(c ?? (s ? 128 : 1)));
  });
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  clearTimeout(timeout);
  if (killer) clearTimeout(killer);
  sampling = false;
  await sampler;
  await Promise.all(
    [stdout, stderrFile].map((s) => (s ? new Promise<void>((r) => s.end(() => r())) : Promise.resolve())),
  );
  let t = { rssKb: 0, exit: undefined as number | undefined, signal: undefined as number | undefined };
  try {
    t = parseTime(await readFile(timeFile, 'utf8'));
    await rm(timeFile, { force: true });
  } catch {
    // time itself was killed
  }
  const exitCode = t.signal !== undefined ? 128 + t.signal : (t.exit ?? code);
  const step: Step = { label: opts.label ?? cmd, wallMs, maxRssKb: t.rssKb, exitCode };
  if (!(opts.okCodes ?? [0]).includes(exitCode))
    throw new CommandError(`${cmd} ${args.join(' ')}`, step, stderr);
  return step;
}

/** SIGKILL the process that GNU time runs (its only child) and GNU time itself. */
function killTree(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    for (const k of childrenOf(pid)) process.kill(k, 'SIGKILL');
  } catch {
    // gone
  }
}

/** The direct children of a process (Linux: /proc/PID/task/PID/children). */
export function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

/** Bytes allocated on disk under `path` (like `du -sb`, apparent sizes), 0 when missing. */
export async function duBytes(path: string): Promise<number> {
  let total = 0;
  const walk = async (p: string): Promise<void> => {
    let st: Awaited<ReturnType<typeof lstat>>;
    try {
      st = await lstat(p);
    } catch {
      return;
    }
    if (st.isDirectory()) {
      let names: string[] = [];
      try {
        names = await readdir(p);
      } catch {
        return;
      }
      for (const n of names) await walk(join(p, n));
    } else {
      total += Number(st.size);
    }
  };
  await walk(path);
  return total;
}

/** Free bytes of the file system holding `path`. */
export async function freeBytes(path: string): Promise<number> {
  const s = await statfs(path);
  return Number(s.bavail) * Number(s.bsize);
}

/** Aggregate of sequential steps: the wall times add up, the peak RSS is the largest. */
export function combine(label: string, steps: Step[]): Step {
  return {
    label,
    wallMs: steps.reduce((a, s) => a + s.wallMs, 0),
    maxRssKb: steps.reduce((a, s) => Math.max(a, s.maxRssKb), 0),
    exitCode: steps.find((s) => s.exitCode !== 0)?.exitCode ?? 0,
  };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return Number.NaN;
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}
