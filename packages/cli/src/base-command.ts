import { LadingError } from '@lading/core/errors';
import { Command, Errors, type Interfaces } from '@oclif/core';
import { Progress } from './progress.ts';

/**
 * The base of every Lading command: `--json` prints the command's typed result as one JSON
 * document on stdout; errors map to DESIGN.md exit codes (LadingError.exitCode, 2 for usage);
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
  }

  protected override async finally(err: Error | undefined): Promise<void> {
    this.progressInstance?.done();
    await super.finally(err);
  }

  /** The hint shown for a typed error: the error's own, or one naming this command's flag. */
  protected hintFor(err: LadingError): string | undefined {
    const flag = (this.constructor as typeof LadingCommand).plainHttpFlag;
    if ((err as { speaksPlainHttp?: boolean }).speaksPlainHttp === true && flag)
      return `this registry serves plain HTTP, not TLS: reach it with ${flag}`;
    return err.hint;
  }

  protected override toErrorJson(err: unknown): unknown {
    if (err instanceof LadingError) return { ...err.toJSON(), hint: this.hintFor(err) };
    const e = err as { message?: string; oclif?: { exit?: number } };
    return {
      error: 'Error',
      code: e.oclif?.exit === 2 ? 'USAGE' : 'UNEXPECTED',
      message: e.message ?? String(err),
    };
  }

  protected override async catch(err: Interfaces.CommandError): Promise<unknown> {
    this.progressInstance?.done();
    if (this.signal.aborted) {
      // Interrupted by SIGINT/SIGTERM: the library cleaned up its temp files on the abort.
      process.exitCode = 130;
      if (this.jsonEnabled())
        this.logJson({ error: 'Interrupted', code: 'INTERRUPTED', message: String(this.signal.reason) });
      else process.stderr.write('Interrupted; nothing was left half-written.\n');
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
    // oclif parse errors carry exit 2 (bad usage); anything else is unexpected (exit 1).
    if (err instanceof Errors.CLIError || err.oclif?.exit !== undefined) return super.catch(err);
    process.exitCode = 1;
    if (this.jsonEnabled()) this.logJson(this.toErrorJson(err));
    else process.stderr.write(`Error (unexpected): ${err.stack ?? err.message}\n`);
  }
}
