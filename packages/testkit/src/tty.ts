import { isolatedEnv } from './env.ts';
import { runCollect } from './proc.ts';

export interface TtyRun {
  code: number | null;
  /** Everything written to the terminal (stdout and stderr, as the terminal got them). */
  raw: string;
  /**
   * What stays on the screen: each line as the last redraw left it (the text after the last
   * carriage return or clear-line of that line), escape sequences and trailing blanks removed.
   */
  screen: string[];
}

/**
 * Runs a command on a pseudo-terminal (util-linux `script`), so its stdout and stderr are a TTY,
 * the way a person at a terminal sees it. `CI` is left out of the environment (the CLIs draw no
 * bars in CI).
 */
export async function runOnTty(
  argv: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<TtyRun> {
  const quote = (a: string) => `'${a.replace(/'/g, "'\\''")}'`;
  const env = isolatedEnv({ ...process.env, ...opts.env });
  delete env.CI;
  env.COLUMNS ??= '200';
  const r = await runCollect('script', ['-qfec', argv.map(quote).join(' '), '/dev/null'], {
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
    env,
  });
  // the command's stdout and stderr both reach `script`'s stdout (the terminal); `script`'s own
  // stderr holds only its own complaints
  const raw = r.stdout + r.stderr;
  return { code: r.status, raw, screen: screenLines(raw) };
}

/** The lines a terminal shows for `raw`: per line, what follows its last `\r`, without escapes. */
export function screenLines(raw: string): string[] {
  return raw
    .replace(/\r\n/g, '\n')
    .split('\n')
    .map((line) =>
      (line.split('\r').at(-1) ?? '')
        // biome-ignore lint/suspicious/noControlCharactersInRegex: terminal escape sequences
        .replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')
        .trimEnd(),
    )
    .filter((l) => l !== '');
}
