import { closest } from '@lading/core/util';
import type { Hook } from '@oclif/core';
import notFound from '@oclif/plugin-not-found';

/**
 * `command_not_found` of both CLIs. On a terminal, @oclif/plugin-not-found asks "Did you mean
 * verify?" and runs it when the answer is yes. Otherwise, and when the answer is no, an unknown
 * command is bad usage (exit 2, README.md; never the plugin's 127) naming the nearest command,
 * and with --json the error is the one JSON shape on stdout.
 */
const hook: Hook.CommandNotFound = async function (opts) {
  const ids = opts.config.commands.filter((c) => !c.hidden).map((c) => c.id);
  const shown = (id: string) => id.replaceAll(':', opts.config.topicSeparator);
  // "lading-load verfy bundle.tar": oclif joins the words it could not place ("verfy:bundle.tar").
  const words = opts.id.split(':');
  const near =
    ids.find((id) => id.startsWith(opts.id)) ??
    closest(opts.id, ids, 2) ??
    closest(words[0] as string, ids, 2);
  const json = (opts.argv ?? []).includes('--json') || process.argv.includes('--json');
  if (!json && process.stdin.isTTY && process.stderr.isTTY) {
    try {
      return await notFound.call(this, opts);
    } catch {
      // declined or no answer: the usage error below
    }
  }
  const message = `"${shown(opts.id)}" is not a ${opts.config.bin} command${near ? `; did you mean "${shown(near)}"?` : ''}`;
  const hint = `${opts.config.bin} help lists the commands`;
  if (json) {
    const error = { name: 'UsageError', code: 'UNKNOWN_COMMAND', message, hint, exitCode: 2 };
    process.stdout.write(`${JSON.stringify({ error }, null, 2)}\n`);
  } else process.stderr.write(`Error: ${message}\n  hint: ${hint}\n`);
  this.exit(2);
};

export default hook;
