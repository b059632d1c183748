/**
 * A command description written as source text (lines broken at ~110 columns) turned into what
 * oclif's help wraps well: each paragraph one line, so the help wraps it at the terminal's width
 * instead of breaking it again where the source did (the ragged help of issue 13). Blank lines
 * separate paragraphs; lines that start with spaces, `* ` or `- ` (lists, tables) keep their
 * own line.
 */
export function paragraphs(text: string): string {
  return text
    .split(/\n[ \t]*\n/)
    .map((block) => {
      const out: string[] = [];
      for (const line of block.split('\n')) {
        const own = /^(\s|\* |- )/.test(line);
        const prev = out.length - 1;
        if (!own && prev >= 0 && !/^(\s|\* |- )/.test(out[prev] as string))
          out[prev] = `${out[prev]} ${line.trim()}`;
        else out.push(own ? line.trimEnd() : line.trim());
      }
      return out.join('\n');
    })
    .join('\n\n');
}
