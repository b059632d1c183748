import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import type { Socket } from 'node:net';

/**
 * Child servers that must not outlive the test process.
 *
 * Each server runs in its own process group behind a small `sh` watchdog that holds a pipe to us:
 * when this process dies for any reason (even SIGKILL) the pipe closes and the watchdog kills the
 * server. On a normal exit or SIGINT/SIGTERM we also kill every group directly.
 */
const live = new Set<ChildProcess>();
let hooked = false;

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

function groupAlive(child: ChildProcess): boolean {
  if (!child.pid) return false;
  try {
    process.kill(-child.pid, 0);
    return true;
  } catch {
    return false;
  }
}

function killAll(): void {
  for (const child of live) killGroup(child, 'SIGKILL');
  live.clear();
}

function hook(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      killAll();
      process.removeListener(sig, onSignal);
      // Only re-raise when nobody else handles the signal, so default behaviour stays.
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}

// $1 = program, rest = its arguments. fd 3 is our pipe; the server must not hold it.
const WATCHDOG = `exec 3<&0
"$@" </dev/null 3<&- &
p=$!
{ cat <&3 >/dev/null; kill -TERM "$p" 2>/dev/null; sleep 2; kill -KILL "$p" 2>/dev/null; } &
w=$!
exec 3<&-
wait "$p"
code=$?
kill "$w" 2>/dev/null
exit "$code"`;

export interface GuardedProcess {
  child: ChildProcess;
  logFile: string;
  /** Resolves with the exit code (or signal) when the process group leader exits. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(): Promise<void>;
}

/** Starts `cmd args…` with stdout+stderr appended to `logFile`, guarded as described above. */
export function spawnGuarded(
  cmd: string,
  args: string[],
  logFile: string,
  env?: NodeJS.ProcessEnv,
): GuardedProcess {
  hook();
  const logFd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn('/bin/sh', ['-c', WATCHDOG, 'lading-watchdog', cmd, ...args], {
      stdio: ['pipe', logFd, logFd],
      detached: true,
      env: env ?? process.env,
    });
  } finally {
    closeSync(logFd);
  }
  live.add(child);
  // A forgotten stop() must not keep mocha alive; the exit hook still kills the group.
  child.unref();
  (child.stdin as Socket | null)?.unref();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
    });
    child.once('error', () => {
      live.delete(child);
      resolve({ code: null, signal: null });
    });
  });
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null || !live.has(child)) {
      await exited;
      return;
    }
    killGroup(child, 'SIGTERM');
    const timer = setTimeout(() => killGroup(child, 'SIGKILL'), 5000);
    try {
      await exited;
    } finally {
      clearTimeout(timer);
    }
    // The group leader is gone; make sure nothing of the group lingers, and wait until it is gone
    // (a killed server still holds its port until the kernel has reaped it).
    killGroup(child, 'SIGKILL');
    child.stdin?.destroy();
    for (let i = 0; i < 100 && groupAlive(child); i++) await new Promise((r) => setTimeout(r, 20));
  };
  return { child, logFile, exited, stop };
}

export interface CollectedRun {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `cmd args…` to its end without blocking the event loop (so a server in this process can
 * answer it) and resolves with its exit status and whole stdout and stderr (UTF-8). The child's
 * stdin gets `input` (default: nothing) and is closed.
 * Rejects only when the command cannot be started.
 */
export function runCollect(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {},
): Promise<CollectedRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
      env: opts.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (status, signal) => resolve({ status, signal, stdout, stderr }));
    // a child that exits without reading its input must not fail the run with EPIPE
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
  });
}
