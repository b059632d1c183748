import { InvalidInputError } from '@lading/core';

/** One thing wrong with a spec, located in its file. */
export interface SpecProblem {
  /** The spec file as the caller named it. */
  file: string;
  /** 1-based line and column; 0 when the problem has no place (e.g. an unreadable file). */
  line: number;
  column: number;
  /** Field path, e.g. `charts[1].version`; '' for the document itself. */
  path: string;
  message: string;
}

export function formatProblem(p: SpecProblem): string {
  const where = p.line > 0 ? `${p.file}:${p.line}:${p.column}` : p.file;
  return `${where} ${p.path ? `${p.path}: ` : ''}${p.message}`;
}

/** An invalid spec file (exit 2). Lists every problem found, each with file, line:column and field. */
export class SpecError extends InvalidInputError {
  override readonly code = 'SPEC_INVALID';
  readonly file: string;
  readonly problems: SpecProblem[];
  constructor(file: string, problems: SpecProblem[]) {
    const lines = problems.map(formatProblem);
    super(
      problems.length === 1
        ? (lines[0] as string)
        : `${file}: ${problems.length} problems\n${lines.map((l) => `  ${l}`).join('\n')}`,
      {
        hint: 'fix the spec (every field is described in docs/spec-file.md); schema/lading.schema.json lets an editor check it as you type',
      },
    );
    this.file = file;
    this.problems = problems;
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), file: this.file, problems: this.problems };
  }
}
