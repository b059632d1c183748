import { spawn } from 'node:child_process';
import { access, constants, stat } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { InvalidInputError, RemoteError } from '@lading/core';

/** No helm binary (exit 2): says where to get one. */
export class HelmNotFoundError extends InvalidInputError {
  override readonly code = 'HELM_NOT_FOUND';
}

/** helm failed for a release (exit 4: the cluster or registry refused), with helm's own stderr. */
export class HelmFailedError extends RemoteError {
  override readonly code = 'HELM_FAILED';
  readonly release: string;
  readonly exitStatus: number | null;
  readonly stderr: string;
  constructor(release: string, exitStatus: number | null, stderr: string, completed: string[]) {
    super(
      `helm failed for release ${release} (exit ${exitStatus ?? 'signal'}): ${stderr.trim() || '(no output)'}`,
      {
        hint:
          (completed.length > 0 ? `releases installed before it: ${completed.join(', ')}; ` : '') +
          `fix the cause and run install again (helm upgrade --install is idempotent), or --release ${release} to retry only it`,
      },
    );
    this.release = release;
    this.exitStatus = exitStatus;
    this.stderr = stderr;
  }
}

const HELM_HINT =
  'install helm 3.8+ on this host (it is a single binary: copy it from https://github.com/helm/helm/releases, or carry it in the bundle as a file) ' +
  'and put it on PATH, or give its location with --helm PATH';

async function executable(path: string): Promise<boolean> {
  try {
    const st = await stat(path);
    if (!st.isFile()) return false;
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The helm to run: `--helm PATH` when given (must be an executable file), else `helm` on PATH. */
export async function findHelm(explicit?: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  if (explicit !== undefined) {
    if (await executable(explicit)) return explicit;
    throw new HelmNotFoundError(`--helm ${explicit} is not an executable file`, { hint: HELM_HINT });
  }
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, 'helm');
    if (await executable(candidate)) return candidate;
  }
  throw new HelmNotFoundError('helm was not found on PATH', { hint: HELM_HINT });
}

export interface HelmRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Run helm with arguments (no shell); output captured. */
export function runHelm(
  helm: string,
  args: readonly string[],
  opts: { signal?: AbortSignal } = {},
): Promise<HelmRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(helm, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      stdout += c;
    });
    child.stderr.setEncoding('utf8').on('data', (c: string) => {
      stderr += c;
    });
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** A command line for people: arguments quoted for a POSIX shell where needed. */
export function shellLine(cmd: string, args: readonly string[]): string {
  const q = (a: string) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`);
  return [cmd, ...args].map(q).join(' ');
}
