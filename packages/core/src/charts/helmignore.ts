/**
 * The basics of Helm's `.helmignore` (pkg/ignore): one pattern a line, `#` comments, `!` negates,
 * a trailing `/` matches directories only, a pattern with a `/` matches the whole relative path,
 * one without matches the base name; `*`, `?` and `[…]` as in filepath.Match. The first rule
 * that matches decides. Like Helm, hidden files in templates/ are always ignored.
 */
export interface IgnoreRule {
  negate: boolean;
  dirOnly: boolean;
  fullPath: boolean;
  re: RegExp;
}

function globToRegExp(glob: string): RegExp {
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string;
    if (c === '*') out += '[^/]*';
    else if (c === '?') out += '[^/]';
    else if (c === '[') {
      const end = glob.indexOf(']', i + 1);
      if (end === -1) out += '\\[';
      else {
        let cls = glob.slice(i + 1, end);
        if (cls.startsWith('!') || cls.startsWith('^')) cls = `^${cls.slice(1)}`;
        out += `[${cls.replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else if (c === '\\' && i + 1 < glob.length) {
      out += (glob[++i] as string).replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    } else out += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`^${out}$`);
}

export function parseHelmignore(text: string): IgnoreRule[] {
  const rules: IgnoreRule[] = [
    { negate: false, dirOnly: false, fullPath: true, re: globToRegExp('templates/.?*') },
  ];
  for (const raw of text.split(/\r?\n/)) {
    let line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    let negate = false;
    if (line.startsWith('!')) {
      negate = true;
      line = line.slice(1);
    }
    let dirOnly = false;
    if (line.endsWith('/')) {
      dirOnly = true;
      line = line.slice(0, -1);
    }
    if (line.startsWith('/')) line = line.slice(1);
    if (line === '' || line.includes('**')) continue;
    rules.push({ negate, dirOnly, fullPath: line.includes('/'), re: globToRegExp(line) });
  }
  return rules;
}

/** Whether a path (relative to the chart folder, `/`-separated) is ignored. */
export function isIgnored(rules: readonly IgnoreRule[], relPath: string, isDir: boolean): boolean {
  const base = relPath.slice(relPath.lastIndexOf('/') + 1);
  for (const r of rules) {
    if (r.dirOnly && !isDir) continue;
    if (r.re.test(r.fullPath ? relPath : base)) return !r.negate;
  }
  return false;
}
