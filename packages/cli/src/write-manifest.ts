/**
 * `node ../cli/dist/write-manifest.js` (the last step of a CLI package's build): write
 * `oclif.manifest.json` at the package root. Without it oclif imports every command module, and
 * with them nearly the whole library, on every start (`lading-load --version` took ~1.3 s); with
 * it a run imports only the command it runs. The manifest is built from the compiled commands
 * themselves (oclif's own Plugin loader, any stale manifest ignored), so flags and help match
 * `dist/` exactly; every build rewrites it.
 */
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Plugin } from '@oclif/core';

const root = process.cwd();
const plugin = new Plugin({ root, type: 'core', ignoreManifest: true, errorOnManifestCreate: true });
await plugin.load();
const target = join(root, 'oclif.manifest.json');
const tmp = `${target}.${process.pid}.tmp`;
await writeFile(tmp, `${JSON.stringify(plugin.manifest, null, 2)}\n`);
await rename(tmp, target);
console.log(`${plugin.name}: oclif.manifest.json, ${Object.keys(plugin.manifest.commands).length} commands`);
