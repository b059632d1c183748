import { mkdir } from 'node:fs/promises';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { InvalidInputError, writeFileAtomic } from '@lading/core';
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
 * and renamed into place. Returns the absolute paths written.
 */
export async function writeMirrorFiles(dir: string, files: readonly MirrorFile[]): Promise<string[]> {
  const root = resolve(dir);
  const out: string[] = [];
  for (const f of files) {
    const dest = resolve(root, f.path);
    const rel = relative(root, dest);
    if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) {
      throw new MirrorOutputPathError(`generated file ${f.path} would land outside ${dir}`);
    }
    await mkdir(dirname(dest), { recursive: true });
    await writeFileAtomic(dest, f.content);
    out.push(dest);
  }
  return out;
}
