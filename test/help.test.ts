import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

/**
 * Help that helps (issue 13), on the built CLIs: `help COMMAND` works as `COMMAND --help` does
 * (@oclif/plugin-help), a mistyped command names the nearest one with exit 2, and descriptions
 * wrap at the terminal's width instead of where the source broke its lines.
 */
const root = fileURLToPath(new URL('..', import.meta.url));
const pexec = promisify(execFile);
const CLIS = { 'lading-build': 'builder', 'lading-load': 'loader' } as const;

async function run(cli: keyof typeof CLIS, args: string[]) {
  const bin = join(root, 'packages', CLIS[cli], 'bin/run.js');
  try {
    const r = await pexec(process.execPath, [bin, ...args], { env: { ...process.env, COLUMNS: '80' } });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

async function commandIds(pkg: string): Promise<string[]> {
  const dir = join(root, 'packages', pkg, 'src', 'commands');
  const out: string[] = [];
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      if (e.isDirectory()) await walk(join(d, e.name));
      else if (e.name.endsWith('.ts')) out.push(relative(dir, join(d, e.name)).replace(/\.ts$/, ''));
    }
  };
  await walk(dir);
  return out.map((id) => id.split('/').join(' ')).sort();
}

/** Lines of a paragraph of DESCRIPTION that end far before the width while more text follows. */
function raggedLines(help: string): string[] {
  const desc = /\nDESCRIPTION\n([\s\S]*?)\n(?:EXAMPLES|FLAG DESCRIPTIONS)\n/.exec(help)?.[1] ?? '';
  const bad: string[] = [];
  for (const para of desc.split(/\n\s*\n/)) {
    const lines = para.trimEnd().split('\n');
    for (let i = 0; i < lines.length - 1; i++) {
      const line = lines[i] as string;
      const next = (lines[i + 1] as string).trimStart();
      // A list item or table row ends its own line; a sentence runs on to the width: a line
      // is ragged when the next line's first word would have fitted on it.
      if (/^\s*(\* |- )/.test(next) || /^ {4,}\S/.test(lines[i + 1] as string)) continue;
      const word = next.split(' ')[0] as string;
      if (line.length + 1 + word.length <= 80) bad.push(line);
    }
  }
  return bad;
}

describe('help on both CLIs (built binaries)', function () {
  this.timeout(300_000);

  for (const cli of Object.keys(CLIS) as Array<keyof typeof CLIS>) {
    it(`${cli}: every command has help through "help COMMAND" and --help, wrapped at the width`, async () => {
      const ids = await commandIds(CLIS[cli]);
      assert.ok(ids.length >= 5, ids.join(', '));
      for (const id of ids) {
        const viaHelp = await run(cli, ['help', ...id.split(' ')]);
        assert.equal(viaHelp.code, 0, `${cli} help ${id}: ${viaHelp.stderr}`);
        assert.match(viaHelp.stdout, /USAGE/);
        const viaFlag = await run(cli, [...id.split(' '), '--help']);
        assert.equal(viaFlag.code, 0, viaFlag.stderr);
        assert.equal(viaHelp.stdout, viaFlag.stdout, `${cli} help ${id} = ${id} --help`);
        assert.deepEqual(raggedLines(viaFlag.stdout), [], `${cli} ${id} --help wraps raggedly`);
      }
    });
  }

  it('a mistyped command names the nearest one, exit 2 (not 127), also with --json', async () => {
    const r = await run('lading-load', ['verfy', 'b.tar']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /did you mean "verify"\?/);
    const k = await run('lading-build', ['keys', 'gen']);
    assert.equal(k.code, 2);
    assert.match(k.stderr, /did you mean "keys generate"\?/);
    const j = await run('lading-load', ['verfy', '--json']);
    assert.equal(j.code, 2);
    assert.equal(JSON.parse(j.stdout).error.code, 'UNKNOWN_COMMAND');
  });

  it('help piped into head ends quietly (no exit 13)', async () => {
    const bin = join(root, 'packages/builder/bin/run.js');
    const r = await pexec('sh', ['-c', `"${process.execPath}" "${bin}" create --help | head -1`]);
    assert.doesNotMatch(r.stderr, /unsettled top-level await/);
  });
});
