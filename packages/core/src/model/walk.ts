import { throwIfAborted } from '../errors/index.ts';
import type { Descriptor } from './descriptor.ts';
import { type ParsedManifest, parseManifest, successors } from './manifest.ts';
import { isManifestOrIndexType } from './media-types.ts';

/**
 * The one walk of a content graph for readers that need every node once (push's plan, the
 * layout's gc, serve's catalog, verify's graph check, create's --since base, a supply-chain
 * artifact's nodes; the copy engine has its own scheduler in `copy/graph.ts`):
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

export interface ManifestChildrenOptions {
  /** How a node is named in a parse error (default: its digest). */
  source?: (d: Descriptor) => string;
  /**
   * `false`: a manifest's `subject` is not one of its children (a supply-chain artifact's own
   * graph, walked without the image it is about). Default: it is.
   */
  subject?: boolean;
  /**
   * Sees each manifest or index once parsed, before its children are walked; what it throws
   * stops the walk (e.g. a root that must name a given `subject`).
   */
  visit?: (d: Descriptor, parsed: ParsedManifest) => void;
}

/**
 * `children` for walkDescriptors over stored manifests: a manifest's or index's successors (see
 * `successors`), read through `read` (undefined when the node is not there); blobs are leaves.
 */
export function manifestChildren(
  read: (d: Descriptor) => Promise<Uint8Array | undefined>,
  opts: ManifestChildrenOptions = {},
): (d: Descriptor) => Promise<Descriptor[] | undefined> {
  const subject = opts.subject ?? true;
  return async (d) => {
    if (!isManifestOrIndexType(d.mediaType)) return undefined;
    const bytes = await read(d);
    if (bytes === undefined) return undefined;
    const parsed = parseManifest(bytes, d.mediaType, opts.source ? opts.source(d) : d.digest);
    opts.visit?.(d, parsed);
    return successors(parsed, { subject });
  };
}
