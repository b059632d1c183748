import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/**
 * One flag vocabulary across both CLIs (issue 13): every flag of every command of lading-build and
 * lading-load, loaded from the command classes, must match its row in the docs/CONVENTIONS.md flag
 * table (same short flag, same kind), and no two flag names may share a short flag.
 */

const root = fileURLToPath(new URL('..', import.meta.url));

interface FlagDef {
  type: 'boolean' | 'option';
  char?: string;
}
interface CommandClass {
  flags?: Record<string, FlagDef>;
  baseFlags?: Record<string, FlagDef>;
  enableJsonFlag?: boolean;
}
interface Row {
  short: string | undefined;
  kind: 'switch' | 'value';
}

async function commandFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await commandFiles(p)));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out.sort();
}

/** `builder keys generate` → its flags, for every command of both CLIs. */
async function allCommands(): Promise<Map<string, Record<string, FlagDef>>> {
  const commands = new Map<string, Record<string, FlagDef>>();
  for (const [cli, pkg] of [
    ['lading-build', 'builder'],
    ['lading-load', 'loader'],
  ] as const) {
    const dir = join(root, 'packages', pkg, 'src', 'commands');
    for (const file of await commandFiles(dir)) {
      const mod = (await import(pathToFileURL(file).href)) as { default?: CommandClass };
      const C = mod.default;
      if (!C) continue;
      const id = relative(dir, file).replace(/\.ts$/, '').split('/').join(' ');
      const flags: Record<string, FlagDef> = { ...(C.baseFlags ?? {}), ...(C.flags ?? {}) };
      if (C.enableJsonFlag) flags.json = { type: 'boolean' };
      commands.set(`${cli} ${id}`, flags);
    }
  }
  return commands;
}

async function conventionsTable(): Promise<Map<string, Row>> {
  const text = await readFile(join(root, 'docs', 'CONVENTIONS.md'), 'utf8');
  const rows = new Map<string, Row>();
  for (const line of text.split('\n')) {
    const m = /^\| `--([a-z0-9-]+)` \| *(?:`-([a-zA-Z])`)? *\| (switch|value) \|/.exec(line);
    if (!m) continue;
    rows.set(m[1] as string, { short: m[2], kind: m[3] as Row['kind'] });
  }
  return rows;
}

describe('one flag vocabulary across lading-build and lading-load', () => {
  let commands: Map<string, Record<string, FlagDef>>;
  let table: Map<string, Row>;
  before(async () => {
    commands = await allCommands();
    table = await conventionsTable();
  });

  it('finds the commands of both CLIs and the table', () => {
    assert.ok(commands.has('lading-build create'), [...commands.keys()].join(', '));
    assert.ok(commands.has('lading-build keys generate'));
    assert.ok(commands.has('lading-load push'));
    assert.ok(commands.has('lading-load verify'));
    assert.ok(table.size > 20, `${table.size} rows in the CONVENTIONS.md flag table`);
  });

  it('every flag is in the docs/CONVENTIONS.md table, with its short flag and kind', () => {
    const problems: string[] = [];
    for (const [cmd, flags] of commands) {
      for (const [name, def] of Object.entries(flags)) {
        const row = table.get(name);
        const kind = def.type === 'boolean' ? 'switch' : 'value';
        if (!row) {
          problems.push(
            `${cmd} --${name}: not in the docs/CONVENTIONS.md flag table (add a row, or reuse one)`,
          );
          continue;
        }
        if (row.kind !== kind) problems.push(`${cmd} --${name} is a ${kind}; the table says ${row.kind}`);
        if ((def.char ?? undefined) !== row.short)
          problems.push(
            `${cmd} --${name} has short flag ${def.char ? `-${def.char}` : 'none'}; the table says ${row.short ? `-${row.short}` : 'none'}`,
          );
      }
    }
    assert.deepEqual(problems, []);
  });

  it('no short flag stands for two flag names, in either CLI', () => {
    const byChar = new Map<string, Set<string>>();
    for (const [cmd, flags] of commands) {
      for (const [name, def] of Object.entries(flags)) {
        if (!def.char) continue;
        const names = byChar.get(def.char) ?? new Set<string>();
        names.add(`--${name} (${cmd})`);
        byChar.set(def.char, names);
      }
    }
    const clashes: string[] = [];
    for (const [char, uses] of byChar) {
      const names = new Set([...uses].map((u) => u.split(' ')[0]));
      if (names.size > 1) clashes.push(`-${char}: ${[...uses].join(', ')}`);
    }
    assert.deepEqual(clashes, []);
  });

  it('the table gives each short flag to one name only', () => {
    const seen = new Map<string, string>();
    for (const [name, row] of table) {
      if (!row.short) continue;
      assert.equal(
        seen.get(row.short),
        undefined,
        `-${row.short} is given to --${name} and --${seen.get(row.short)}`,
      );
      seen.set(row.short, name);
    }
  });
});
