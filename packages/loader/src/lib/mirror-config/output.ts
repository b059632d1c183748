import { mkdir } from 'node:fs/promises';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { InvalidInputError, pathExists, writeFileAtomic } from '@lading/core';
import type { MirrorConfig, MirrorFile } from './types.ts';

export class MirrorOutputPathError extends InvalidInputError {
  override readonly code = 'UNSAFE_OUTPUT_PATH';
}

/** The files one after the other, each under a `# ==> path <==` header (like `head`), for stdout. */
export function formatMirrorConfig(config: MirrorConfig): string {
  const parts = config.files.map(
    (f) => `# ==> ${f.path} <==\n${f.content.endsWith('\n') ? f.content : `${f.content}\n`}`,
  );
  return `${parts.join('\n')}\n# ${config.instructions}\n`;
}

/**
 * Write every file under `dir` (created when missing), each to a temporary name in its own folder
 * and renamed into place. Files already there are refused, all of them named and none written,
 * unless `overwrite`. Returns the absolute paths written.
 */
export async function writeMirrorFiles(
  dir: string,
  files: readonly MirrorFile[],
  opts: { overwrite?: boolean } = {},
): Promise<string[]> {
  const root = resolve(dir);
  const planned: Array<{ dest: string; content: string }> = [];
  for (const f of files) {
    const dest = resolve(root, f.path);
    const rel = relative(root, dest);
    if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) {
      throw new MirrorOutputPathError(`generated file ${f.path} would land outside ${dir}`);
    }
    planned.push({ dest, content: f.content });
  }
  if (!opts.overwrite) {
    const existing: string[] = [];
    for (const p of planned) if (await pathExists(p.dest)) existing.push(p.dest);
    if (existing.length > 0)
      throw new InvalidInputError(`${existing.join(', ')} already exist${existing.length === 1 ? 's' : ''}`, {
        hint: 'pass --force to replace them, or choose another --output folder',
      });
  }
  const out: string[] = [];
  for (const p of planned) {
    await mkdir(dirname(p.dest), { recursive: true });
    await writeFileAtomic(p.dest, p.content, { overwrite: opts.overwrite ?? false });
    out.push(p.dest);
  }
  return out;
}
