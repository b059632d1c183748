import { fileURLToPath } from 'node:url';

/**
 * Node flags both CLIs run with. Moving blobs allocates many short-lived buffers and stream
 * objects; V8 then grows its young generation to 16 MiB semi-spaces (~50 MiB of RSS that holds
 * almost nothing live). 1 MiB semi-spaces keep peak RSS ~50 MiB lower at no measurable CPU cost
 * (docs/benchmarks.md). The standalone loader gets them from its SEA config (`execArgv`).
 */
export const RUNTIME_FLAGS: readonly string[] = ['--max-semi-space-size=1'];

/**
 * When this process was started without RUNTIME_FLAGS (`node bin/run.js`, the pnpm and npm
 * shims), replace it — same pid, same stdio, same signals — by Node with them (`process.execve`,
 * Node >= 22.15). A no-op where they are set already or execve is missing.
 */
export function relaunchWithRuntimeFlags(entryUrl: string): void {
  const missing = RUNTIME_FLAGS.filter((f) => !process.execArgv.includes(f));
  const execve = (process as { execve?: (file: string, args: string[], env: NodeJS.ProcessEnv) => never })
    .execve;
  if (missing.length === 0 || typeof execve !== 'function' || process.env.LADING_NO_RELAUNCH === '1') return;
  execve.call(
    process,
    process.execPath,
    [process.execPath, ...missing, ...process.execArgv, fileURLToPath(entryUrl), ...process.argv.slice(2)],
    process.env,
  );
}

/**
 * `lading-build create --help | head -3`: once the reader is gone, stop quietly. Without this a
 * write to the closed pipe never completes and Node exits 13 with "unsettled top-level await".
 */
export function exitOnBrokenPipe(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(0);
      throw err;
    });
  }
}
