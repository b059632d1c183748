import { throwIfAborted } from '../errors/index.ts';
import type { Descriptor } from './descriptor.ts';
import { parseManifest, successors } from './manifest.ts';
import { isManifestOrIndexType } from './media-types.ts';

/**
 * The one walk of a content graph for readers that need every node once (push's plan, the
 * layout's gc, serve's catalog; the copy engine has its own scheduler in `copy/graph.ts`):
 * depth-first from each root in order, a node before its children, children in their stored
 * order, each digest once. `children` reads a node's children (undefined or [] for a leaf, or a
 * node that is not there); `enter` may refuse a node (return false: it is neither entered nor
 * descended, e.g. already known from an earlier walk).
 */
export async function walkDescriptors(
  roots: Iterable<Descriptor>,
  children: (d: Descriptor) => Promise<readonly Descriptor[] | undefined>,
  opts: { enter?: (d: Descriptor) => boolean; signal?: AbortSignal } = {},
): Promise<void> {
  const seen = new Set<string>();
  const stack = [...roots].reverse();
  while (stack.length > 0) {
    throwIfAborted(opts.signal);
    const d = stack.pop() as Descriptor;
    if (seen.has(d.digest)) continue;
    seen.add(d.digest);
    if (opts.enter && !opts.enter(d)) continue;
    const kids = await children(d);
    if (kids) for (let i = kids.length - 1; i >= 0; i--) stack.push(kids[i] as Descriptor);
  }
}

/**
 * `children` for walkDescriptors over stored manifests: a manifest's or index's successors (see
 * `successors`), read through `read` (undefined when the node is not there); blobs are leaves.
 */
export function manifestChildren(
  read: (d: Descriptor) => Promise<Uint8Array | undefined>,
  source: (d: Descriptor) => string = (d) => d.digest,
): (d: Descriptor) => Promise<Descriptor[] | undefined> {
  return async (d) => {
    if (!isManifestOrIndexType(d.mediaType)) return undefined;
    const bytes = await read(d);
    return bytes === undefined ? undefined : successors(parseManifest(bytes, d.mediaType, source(d)));
  };
}
