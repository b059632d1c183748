// Builds `lading-load` as one executable file for linux-x64 with Node's single executable
// applications (SEA). Run through scripts/build-loader (which puts Node 24 first on PATH).
//
//   1. esbuild bundles packages/loader's commands and every dependency (@lading/core, @oclif/core,
//      undici, tar, the AWS SDK …) into one CommonJS script. Node 24's SEA runs CommonJS mains
//      only; `require()` inside the blob reaches built-in modules only, so nothing may stay
//      external except optional development-only modules oclif probes for in try/catch.
//   2. oclif normally discovers commands on the filesystem. The bundle's entry (generated below,
//      one import per file under packages/loader/src/commands) hands oclif a ready root Plugin
//      whose command table is already filled, with the package.json data inline, so oclif reads
//      no file at start-up. What the Node CLI gets from plugins and hooks is built in: the `help`
//      command of @oclif/plugin-help joins the table, and @lading/cli's command_not_found hook
//      (did you mean …?, exit 2) answers oclif's runHook.
//   3. `node --experimental-sea-config` writes the blob; postject injects it into a copy of the
//      very `node` that runs this script (blob and binary must come from the same Node build).
//
// Output: dist/standalone/lading-load-linux-x64 and lading-load-linux-x64.sha256 (coreutils
// format). The build is deterministic for a given Node binary and source tree (no code cache,
// no timestamps): building twice gives the same sha256.
//
// Options: --out DIR (default dist/standalone), --no-strip (keep the node binary's debug info),
//          --code-cache (embed V8 code cache), --keep-work (keep dist/standalone/.build: the
//          bundled script, the SEA config and blob).
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, copyFile, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RUNTIME_FLAGS } from '../packages/cli/src/runtime.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const loaderDir = join(root, 'packages', 'loader');
const commandsDir = join(loaderDir, 'src', 'commands');
const NAME = 'lading-load-linux-x64';
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

const args = process.argv.slice(2);
const flag = (name: string) => args.includes(name);
const outIndex = args.indexOf('--out');
const outDir = resolve(outIndex >= 0 ? (args[outIndex + 1] ?? '') : join(root, 'dist', 'standalone'));
const strip = !flag('--no-strip');
const codeCache = flag('--code-cache');
const keepWork = flag('--keep-work');

function say(msg: string): void {
  process.stderr.write(`build-loader: ${msg}\n`);
}
function fail(msg: string): never {
  process.stderr.write(`build-loader: error: ${msg}\n`);
  process.exit(1);
}

if (process.platform !== 'linux' || process.arch !== 'x64') {
  fail(
    `this builds a linux-x64 executable from the running node; this is ${process.platform}-${process.arch}`,
  );
}
const major = Number(process.versions.node.split('.')[0]);
if (major < 22)
  fail(`Node ${process.version} is too old for single executable applications here; run scripts/setup`);

/** Every command module: `keys/generate.ts` → id `keys:generate` (oclif's own rule). */
async function findCommands(dir: string): Promise<{ id: string; file: string }[]> {
  const out: { id: string; file: string }[] = [];
  async function walk(d: string): Promise<void> {
    let entries: import('node:fs').Dirent[];
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (/\.(ts|js)$/.test(e.name) && !/\.(d|test|spec)\.ts$/.test(e.name)) {
        const rel = relative(dir, p)
          .replace(/\.(ts|js)$/, '')
          .split(sep);
        if (rel.at(-1) === 'index') rel.pop();
        out.push({ id: rel.join(':'), file: p });
      }
    }
  }
  await walk(dir);
  return out;
}

/**
 * The bundle's entry. 'eager' imports every command up front and, with
 * LADING_STANDALONE_DUMP_MANIFEST=1, prints oclif's command manifest (flags, args, help text) and
 * exits. 'lazy' embeds that manifest and imports a command's module only when it runs, so
 * `--version` and `--help` neither compile nor initialise the commands' code (AWS SDK, …).
 */
async function entrySource(
  mode: 'eager' | 'lazy',
  manifest?: string,
): Promise<{ source: string; ids: string[] }> {
  const commands = await findCommands(commandsDir);
  // `lading-load help push`, as @oclif/plugin-help gives the Node CLI.
  commands.push({ id: 'help', file: '@oclif/plugin-help' });
  const pkg = JSON.parse(await readFile(join(loaderDir, 'package.json'), 'utf8'));
  // The package.json that oclif sees, inline. No dependencies: oclif must load no plugin or hook
  // from the filesystem. What the package's own oclif config names is built in instead: the help
  // plugin's `help` command joins the command table, and the command_not_found hook (did you
  // mean …?, exit 2) is called from the entry's runHook below.
  const { plugins: _plugins, hooks: _hooks, ...oclifConfig } = pkg.oclif;
  const pjson = {
    name: pkg.name,
    version: pkg.version,
    description: pkg.description,
    type: 'commonjs',
    license: pkg.license,
    oclif: {
      ...oclifConfig,
      commands: { strategy: 'explicit', target: './standalone-commands.js', identifier: 'commands' },
    },
  };
  const eager = mode === 'eager';
  const imports = eager
    ? commands.map((c, i) => `import * as m${i} from ${JSON.stringify(c.file)};`).join('\n')
    : '';
  const table = commands
    .map(
      (c, i) =>
        `  ${JSON.stringify(c.id)}: ${eager ? `async () => m${i}` : `() => import(${JSON.stringify(c.file)})`},`,
    )
    .join('\n');
  const source = `
import { dirname } from 'node:path';
import { Config, Errors, execute, Plugin, ux } from '@oclif/core';
import notFound from '@lading/cli/not-found';
${imports}

// oclif's own rule for finding the command class in a module (searchForCommandClass); a plugin's
// main module (@oclif/plugin-help) lists its commands under \`commands\`.
function commandClass(m: Record<string, any>): any {
  if (typeof m.run === 'function') return m;
  if (m.default && typeof m.default.run === 'function') return m.default;
  if (m.commands) return commandClass(m.commands);
  return Object.values(m).find((v: any) => v && typeof v.run === 'function');
}

const loaders: Record<string, () => Promise<Record<string, any>>> = {
${table}
};
const pjson = ${JSON.stringify(pjson)};
const manifest: any = ${eager ? 'undefined' : manifest};

async function main(): Promise<void> {
  process.env.OCLIF_DISABLE_ENGINE_WARNING ??= '1';
  // Beside the executable: a folder that exists. Nothing is read from it.
  const root = dirname(process.execPath);
  const plugin: any = new Plugin({ root, pjson, isRoot: true, ignoreManifest: true } as any);
  if (manifest === undefined) {
    // 'explicit' discovery would load the target file; the table is already here.
    const commands: Record<string, unknown> = {};
    for (const [id, load] of Object.entries(loaders)) commands[id] = commandClass(await load());
    plugin.commandCache = commands;
  } else {
    plugin._manifest = async () => {
      plugin.commandIDs = Object.keys(manifest.commands);
      return manifest;
    };
    plugin.findCommand = async (id: string, opts: { must?: boolean } = {}) => {
      const load = loaders[id];
      if (!load) {
        if (opts.must) throw new Error('command ' + id + ' not found');
        return undefined;
      }
      const cmd = commandClass(await load());
      cmd.id = id;
      cmd.plugin = plugin;
      return cmd;
    };
  }
  await plugin.load();
  if (manifest === undefined && process.env.LADING_STANDALONE_DUMP_MANIFEST === '1') {
    process.stdout.write(JSON.stringify(plugin.manifest));
    return;
  }
  await execute({ args: process.argv.slice(2), loadOptions: { root, pjson, plugins: new Map([[plugin.name, plugin]]) } as any });
}

// The CLI's command_not_found hook, bundled: oclif would load it from a file, and there is none
// here. (Config.prototype: oclif builds its own Config from the load options.)
const runHook = (Config.prototype as any).runHook;
(Config.prototype as any).runHook = async function (this: any, event: string, opts: any, ...rest: any[]) {
  if (event !== 'command_not_found') return runHook.call(this, event, opts, ...rest);
  const config = this;
  const context = {
    config,
    debug: () => {},
    error: (message: string | Error, options: any = {}) => Errors.error(message, options),
    exit: (code = 0) => Errors.exit(code),
    log: (message?: string, ...args: string[]) => ux.stdout(message, ...args),
    warn: (message: string | Error) => Errors.warn(message),
  };
  const result = await (notFound as any).call(context, { ...opts, config, context });
  return { successes: [{ plugin: config.rootPlugin, result }], failures: [] };
};
main().catch((err) => {
  process.stderr.write(String(err && err.stack ? err.stack : err) + '\\n');
  process.exitCode = 1;
});
`;
  return { source, ids: commands.map((c) => c.id) };
}

async function bundle(outFile: string, mode: 'eager' | 'lazy', manifest?: string): Promise<string[]> {
  const requireFromLoader = createRequire(join(loaderDir, 'package.json'));
  const esbuild = requireFromLoader('esbuild') as {
    build(opts: Record<string, unknown>): Promise<{ errors: unknown[] }>;
  };
  const { source, ids } = await entrySource(mode, manifest);
  const result = await esbuild.build({
    stdin: {
      contents: source,
      resolveDir: join(loaderDir, 'src'),
      sourcefile: 'standalone-entry.ts',
      loader: 'ts',
    },
    bundle: true,
    platform: 'node',
    target: `node${major}`,
    format: 'cjs',
    conditions: ['lading-source'],
    mainFields: ['main', 'module'],
    // oclif probes for these in try/catch only when developing a CLI from TypeScript.
    external: ['typescript', 'ts-node', 'tsx', 'pnpapi'],
    minify: true,
    keepNames: true,
    legalComments: 'eof',
    charset: 'utf8',
    logLevel: 'warning',
    logOverride: { 'empty-import-meta': 'silent', 'require-resolve-not-external': 'silent' },
    outfile: outFile,
    metafile: true,
  });
  if (result.errors.length > 0) fail('esbuild failed');
  return ids;
}

async function main(): Promise<void> {
  const t0 = Date.now();
  const work = join(outDir, '.build');
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  const script = join(work, 'lading-load.cjs');
  // Two passes: the eager bundle prints oclif's manifest, the lazy one embeds it.
  const eagerScript = join(work, 'lading-load-eager.cjs');
  await bundle(eagerScript, 'eager');
  const manifest = execFileSync(process.execPath, [eagerScript], {
    encoding: 'utf8',
    env: { ...process.env, LADING_STANDALONE_DUMP_MANIFEST: '1' },
    maxBuffer: 64 * 1024 * 1024,
  });
  JSON.parse(manifest);
  const ids = await bundle(script, 'lazy', manifest);
  say(
    `bundled ${ids.length} commands (${ids.join(', ') || 'none yet'}) into ${relative(root, script)}, ${((await stat(script)).size / 1e6).toFixed(1)} MB`,
  );

  // postject needs the fuse exactly once in the result: the script must not spell it out.
  if ((await readFile(script, 'utf8')).includes(SEA_FUSE)) {
    fail(`the bundled script contains the string ${SEA_FUSE}; assemble it at run time instead`);
  }
  const blob = join(work, 'sea-prep.blob');
  const seaConfig = join(work, 'sea-config.json');
  await writeFile(
    seaConfig,
    JSON.stringify(
      {
        main: script,
        output: blob,
        disableExperimentalSEAWarning: true,
        useSnapshot: false,
        useCodeCache: codeCache,
        // The runtime flags `node bin/run.js` re-execs with (@lading/cli/runtime).
        execArgv: [...RUNTIME_FLAGS],
      },
      null,
      2,
    ),
  );
  execFileSync(process.execPath, ['--experimental-sea-config', seaConfig], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });

  const exe = join(work, NAME);
  await copyFile(process.execPath, exe);
  await chmod(exe, 0o755);
  if (strip) {
    // The official node binary carries ~18 MB of symbols and debug info; SEA needs none of it
    // (.dynsym, which native addons link against, stays).
    try {
      execFileSync('strip', ['--strip-all', exe], { stdio: 'inherit' });
    } catch {
      say('strip not found or failed; keeping debug info');
    }
  }
  // postject's ELF backend (LIEF) warns "Can't find string offset for section name '.note…'"
  // on node's annobin notes; harmless, so those lines are dropped from its output.
  const postjectCli = createRequire(join(loaderDir, 'package.json')).resolve('postject/dist/cli.js');
  const injected = spawnSync(
    process.execPath,
    [postjectCli, exe, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SEA_FUSE],
    { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' } },
  );
  const noise =
    /^(warning: Can't find string offset for section name '\.note[.0-9]*'|.*Start injection of .*|.*Injection done!.*)$/;
  const out = `${injected.stdout}${injected.stderr}`
    .split('\n')
    .filter((l) => l.trim() && !noise.test(l.trim()));
  if (injected.status !== 0) fail(`postject failed (exit ${injected.status}):\n${out.join('\n')}`);
  if (out.length > 0) say(`postject: ${out.join('\n')}`);

  // Smoke test before publishing it: the executable must start and know its version.
  const version = execFileSync(exe, ['--version'], {
    encoding: 'utf8',
    env: { PATH: '/nonexistent' },
  }).trim();
  const { version: pkgVersion } = JSON.parse(await readFile(join(loaderDir, 'package.json'), 'utf8'));
  if (!version.includes(`/${pkgVersion} linux-x64 node-${process.version}`))
    fail(`the built executable printed ${JSON.stringify(version)} for --version`);

  const data = await readFile(exe);
  const hex = createHash('sha256').update(data).digest('hex');
  const final = join(outDir, NAME);
  await rename(exe, final);
  const sumTmp = join(work, `${NAME}.sha256`);
  await writeFile(sumTmp, `${hex}  ${NAME}\n`);
  await rename(sumTmp, `${final}.sha256`);
  if (!keepWork) await rm(work, { recursive: true, force: true });
  const size = data.length;
  say(
    `${version}; node ${process.version}${strip ? ', debug info stripped' : ''}${codeCache ? ', code cache' : ''}`,
  );
  say(`built in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  process.stdout.write(
    `${relative(process.cwd(), final) || final}  ${size} bytes (${(size / 1048576).toFixed(1)} MiB)  sha256:${hex}\n`,
  );
}

await main();
