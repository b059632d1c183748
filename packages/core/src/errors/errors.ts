/**
 * Typed errors. Callers tell errors apart by class or by `code`, never by message text.
 * Every error carries the process exit code README.md (Exit codes) assigns to its kind and, where we
 * know one, a hint that suggests the fix.
 */

/** Exit codes of both CLIs (README.md, Exit codes). */
export const ExitCode = {
  ok: 0,
  unexpected: 1,
  usage: 2,
  verification: 3,
  remote: 4,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export interface LadingErrorOptions {
  /** What the user can do about it. */
  hint?: string;
  cause?: unknown;
}

export abstract class LadingError extends Error {
  /** Stable machine-readable kind, e.g. `DIGEST_MISMATCH`. */
  abstract readonly code: string;
  /** Process exit code for this kind of failure. */
  abstract readonly exitCode: ExitCode;
  readonly hint: string | undefined;

  constructor(message: string, options: LadingErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.hint = options.hint;
  }

  /** Message plus hint, as shown to a person. */
  describe(): string {
    return this.hint ? `${this.message}\n  hint: ${this.hint}` : this.message;
  }

  toJSON(): Record<string, unknown> {
    return { error: this.name, code: this.code, message: this.message, hint: this.hint };
  }
}

/** Bad usage or invalid input: flags, spec, malformed references, malformed bundle (exit 2). */
export class InvalidInputError extends LadingError {
  readonly code: string = 'INVALID_INPUT';
  readonly exitCode: ExitCode = ExitCode.usage;
}

/** Content failed verification: digest, size, signature, checksum, tampering (exit 3). */
export class VerificationError extends LadingError {
  readonly code: string = 'VERIFICATION_FAILED';
  readonly exitCode: ExitCode = ExitCode.verification;
}

/** A remote failed: registry, chart repository, S3, auth, network, TLS (exit 4). */
export class RemoteError extends LadingError {
  readonly code: string = 'REMOTE_FAILED';
  readonly exitCode: ExitCode = ExitCode.remote;
}

/** Content that should be somewhere is not (a blob, manifest, tag). Remote by default (exit 4). */
export class NotFoundError extends RemoteError {
  override readonly code: string = 'NOT_FOUND';
}

/** An operation was aborted through its AbortSignal. */
export class AbortedError extends LadingError {
  readonly code: string = 'ABORTED';
  readonly exitCode: ExitCode = ExitCode.unexpected;
}

/** Exit code for any thrown value: typed errors carry their own, anything else is unexpected. */
export function exitCodeOf(err: unknown): ExitCode {
  return err instanceof LadingError ? err.exitCode : ExitCode.unexpected;
}

/** Throw an AbortedError when the signal is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw new AbortedError('operation aborted', { cause: signal.reason });
  }
}

/** Await `p`, but reject with AbortedError as soon as `signal` aborts (the work itself goes on). */
export function abortable<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  throwIfAborted(signal);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new AbortedError('operation aborted', { cause: signal.reason }));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

/**
 * The one list of network error codes worth another attempt (Node and undici codes of a refused,
 * dropped or stalled connection). The registry's retry policy, retryTransient and the S3 loops
 * all ask `isTransientCode`.
 */
const TRANSIENT_CODES: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

/** Whether a network error code is transient (see TRANSIENT_CODES). */
export function isTransientCode(code: unknown): boolean {
  return typeof code === 'string' && TRANSIENT_CODES.has(code);
}

/**
 * Whether another attempt may succeed: a typed error that says so (`transient`: the remote was
 * briefly unavailable, 5xx, 429, a dropped connection), or a raw connection error. Verification
 * failures, refusals, "not found" and bad input are never transient.
 */
export function isTransientError(err: unknown): boolean {
  if (err instanceof LadingError) return (err as { transient?: unknown }).transient === true;
  return isTransientCode((err as { code?: unknown } | undefined)?.code);
}
