import { type Document, isMap, isPair, isScalar, isSeq, type LineCounter, type Node } from 'yaml';

export type PathSegment = string | number;

/** `charts[1].version` from ['charts', 1, 'version']. */
export function formatPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? seg : `.${seg}`;
  }
  return out;
}

/**
 * The node at a path, or the deepest existing ancestor (for a missing field, its parent map).
 * With `key`, the key node of the last segment (to point at an unknown or misspelled key).
 */
function nodeAt(doc: Document, path: readonly PathSegment[], key: boolean): Node | undefined {
  let node: unknown = doc.contents;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i];
    const last = i === path.length - 1;
    if (isMap(node)) {
      const pair = node.items.find(
        (p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg),
      );
      if (!pair) return node as Node;
      if (last && key && isScalar(pair.key)) return pair.key as Node;
      node = pair.value ?? pair.key;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg];
      if (item === undefined || item === null) return node as Node;
      node = item;
    } else {
      return node as Node;
    }
  }
  return node as Node;
}

export function positionOf(
  doc: Document,
  lines: LineCounter,
  path: readonly PathSegment[],
  opts: { key?: boolean } = {},
): { line: number; column: number } {
  const node = nodeAt(doc, path, opts.key ?? false);
  const offset = node?.range?.[0];
  if (offset === undefined) return { line: 1, column: 1 };
  const { line, col } = lines.linePos(offset);
  return { line, column: col };
}
