import { ExitCode, LadingError } from '@lading/core/errors';
import { Command, Errors, type Interfaces } from '@oclif/core';
import { Progress } from './progress.ts';

/**
 * The base of every Lading command: `--json` prints the command's typed result as one JSON
 * document on stdout; errors map to the exit codes in README.md (LadingError.exitCode, 2 for usage);
 * SIGINT/SIGTERM abort the command's AbortSignal so temp files are cleaned up.
 */
export abstract class LadingCommand<T> extends Command {
  static override enableJsonFlag = true;

  /**
   * How this command reaches a registry that speaks plain HTTP (`--plain-http`, or
   * `--plain-http-host HOST` where several registries are in play): the TLS-handshake hint names it.
   */
  static plainHttpFlag: string | undefined;

  private readonly controller = new AbortController();
  private progressInstance: Progress | undefined;

  /** Aborted on SIGINT/SIGTERM. Pass it to every library call. */
  protected get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Progress output on stderr: bars on a TTY, plain lines otherwise, nothing with --json. */
  protected get progress(): Progress {
    this.progressInstance ??= new Progress({
      stream: process.stderr,
      enabled: !this.jsonEnabled(),
      tty: Boolean(process.stderr.isTTY) && process.env.CI === undefined,
    });
    return this.progressInstance;
  }

  abstract override run(): Promise<T>;

  protected override async init(): Promise<void> {
    await super.init();
    const abort = (sig: NodeJS.Signals) => {
      if (this.controller.signal.aborted) process.exit(130);
      this.controller.abort(new Error(`interrupted by ${sig}`));
    };
    process.once('SIGINT', abort);
    process.once('SIGTERM', abort);
    // Node exits with status 13 when the event loop empties while the command still awaits
    // something (a promise nothing will settle): that is our bug, so say so, with exit 1.
    process.once('beforeExit', () => {
      if (this.settled) return;
      this.settled = true;
      this.reportUnexpected(
        new Error('the command stopped with work still pending (nothing left to wait for)'),
      );
    });
  }

  private settled = false;

  protected override async finally(err: Error | undefined): Promise<void> {
    this.settled = true;
    this.progressInstance?.done();
    await super.finally(err);
  }

  /** The hint shown for a typed error: the error's own, or one naming this command's flag. */
  protected hintFor(err: LadingError): string | undefined {
    const flag = (this.constructor as typeof LadingCommand).plainHttpFlag;
    let hint = err.hint;
    if ((err as { speaksPlainHttp?: boolean }).speaksPlainHttp === true && flag)
      hint = `this registry serves plain HTTP, not TLS: reach it with ${flag}`;
    if (err.exitCode === ExitCode.remote) {
      const rerun = (this.constructor as typeof LadingCommand).rerunNote;
      const again = `${hint ? 'then ' : 'once the remote is reachable, '}run the same command again${rerun ? ` (${rerun})` : ''}`;
      hint = hint ? `${hint}; ${again}` : again;
    }
    return hint;
  }

  /**
   * What a rerun after a remote failure keeps (push: "what reached the registry is skipped"),
   * shown after "then run the same command again".
   */
  static rerunNote: string | undefined;

  /** The one JSON shape of an error (README, "Errors and exit codes"). */
  protected errorJson(err: unknown): JsonError {
    if (err instanceof LadingError) {
      const hint = this.hintFor(err);
      return {
        name: err.name,
        code: err.code,
        message: err.message,
        ...(hint ? { hint } : {}),
        exitCode: err.exitCode,
      };
    }
    const e = err as { message?: string; name?: string; oclif?: { exit?: number } };
    if (isUsageError(err))
      return {
        name: 'UsageError',
        code: 'USAGE',
        message: e.message ?? String(err),
        hint: `see ${this.config.bin} ${this.id ?? ''} --help`.replace(/ +/g, ' '),
        exitCode: ExitCode.usage,
      };
    return {
      name: e.name ?? 'Error',
      code: 'UNEXPECTED',
      message: e.message ?? String(err),
      hint: this.reportHint(),
      exitCode: ExitCode.unexpected,
    };
  }

  protected override toErrorJson(err: unknown): unknown {
    return { error: this.errorJson(err) };
  }

  private reportHint(): string {
    const bugs = (this.config?.pjson as { bugs?: string | { url?: string } } | undefined)?.bugs;
    const where = typeof bugs === 'string' ? bugs : (bugs?.url ?? 'the Lading maintainers');
    return `this is a bug in Lading, not in your input: please report it to ${where} with the command line and this output (LADING_DEBUG=1 adds the stack trace)`;
  }

  private reportUnexpected(err: unknown): void {
    process.exitCode = ExitCode.unexpected;
    const e = err as { message?: string; stack?: string };
    if (this.jsonEnabled()) {
      this.logJson(this.toErrorJson(err));
      return;
    }
    process.stderr.write(`Error (unexpected): ${e.message ?? String(err)}\n  hint: ${this.reportHint()}\n`);
    if (process.env.LADING_DEBUG === '1' && e.stack) process.stderr.write(`${e.stack}\n`);
  }

  /** The line that repeats this command, for "interrupted: run … to finish". */
  private commandLine(): string {
    const quote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`);
    return [this.config.bin, ...(this.id ? this.id.split(':') : []), ...this.argv].map(quote).join(' ');
  }

  protected override async catch(err: Interfaces.CommandError): Promise<unknown> {
    this.settled = true;
    this.progressInstance?.done();
    if (this.signal.aborted) {
      // Interrupted by SIGINT/SIGTERM: the library cleaned up its temp files on the abort.
      process.exitCode = 130;
      const message = `${(this.signal.reason as Error)?.message ?? 'interrupted'}; nothing was left half-written`;
      const rerun = `to finish, run the same command again: ${this.commandLine()}`;
      if (this.jsonEnabled())
        this.logJson({
          error: { name: 'Interrupted', code: 'INTERRUPTED', message, hint: rerun, exitCode: 130 },
        });
      else process.stderr.write(`${message[0]?.toUpperCase()}${message.slice(1)}.\n${rerun}\n`);
      return;
    }
    if (err instanceof LadingError) {
      process.exitCode = err.exitCode;
      if (this.jsonEnabled()) this.logJson(this.toErrorJson(err));
      else {
        const hint = this.hintFor(err);
        process.stderr.write(`Error: ${err.message}${hint ? `\n  hint: ${hint}` : ''}\n`);
      }
      return;
    }
    if (isUsageError(err)) {
      // oclif's parse errors (unknown flag, missing argument…): bad usage, exit 2, no stack.
      process.exitCode = ExitCode.usage;
      if (this.jsonEnabled()) this.logJson(this.toErrorJson(err));
      else {
        const j = this.errorJson(err);
        process.stderr.write(`Error: ${j.message}\n  hint: ${j.hint}\n`);
      }
      return;
    }
    if (err instanceof Errors.ExitError) return super.catch(err);
    this.reportUnexpected(err);
  }
}

/** The `error` member of every `--json` error document. */
export interface JsonError {
  /** Error class, e.g. `RegistryUnavailableError`. */
  name: string;
  /** Stable machine-readable kind, e.g. `REGISTRY_UNAVAILABLE`. */
  code: string;
  message: string;
  hint?: string;
  /** The process exit status: 1 unexpected, 2 input, 3 verification, 4 remote, 130 interrupted. */
  exitCode: number;
}

/** oclif's parse errors (unknown flag, missing argument, bad value) carry exit 2. */
function isUsageError(err: unknown): boolean {
  return !(err instanceof Errors.ExitError) && (err as { oclif?: { exit?: number } })?.oclif?.exit === 2;
}
