import {
  ChartNotFoundError,
  type Descriptor,
  fanOut,
  type LadingError,
  type Limiter,
  ManifestUnknownError,
  NotFoundError,
  RepositoryUnknownError,
  retryTransient,
} from '@lading/core';
import type { ImageRequest } from './images.ts';
import type { SourceRegistries } from './sources.ts';

/**
 * The resolve phase of `create`: every chart version and every image tag or digest the spec asks
 * for (directly or through a chart) is looked up before any image is pulled, and every one that
 * does not exist is reported in one error, each with where it was asked for.
 */

/** A reference of the spec that does not exist at its source. */
export interface Unresolved {
  /** What was asked for: `host/repo:tag`, or `chart nginx ^18.1.0`. */
  ref: string;
  /** Where it was asked for: `lading.yaml:12`, `chart podinfo, values worker.image`. */
  where: string[];
  /** The source's error (it names the source). */
  message: string;
  /** The source's error code (`MANIFEST_UNKNOWN`, `CHART_NOT_FOUND`, …). */
  code: string;
  hint?: string;
}

/**
 * A tag, digest or chart version that does not exist: the kinds of failure the resolve phase
 * collects instead of stopping at the first (a dead or refusing source still stops at once).
 */
export function isMissingReference(err: unknown): err is LadingError {
  return (
    err instanceof ManifestUnknownError ||
    err instanceof RepositoryUnknownError ||
    err instanceof ChartNotFoundError
  );
}

export function unresolved(ref: string, where: string[], err: LadingError): Unresolved {
  return { ref, where, message: err.message, code: err.code, ...(err.hint ? { hint: err.hint } : {}) };
}

/**
 * One or more references of the spec do not exist (exit 4, like the single missing tag it
 * replaces: README "Exit codes"). Lists them all, each with where the spec or a chart asks for it.
 */
export class ReferencesNotFoundError extends NotFoundError {
  override readonly code = 'REFERENCES_NOT_FOUND';
  readonly missing: Unresolved[];
  constructor(missing: Unresolved[]) {
    const lines = missing.map((m) => `${m.message} — ${m.where.join('; ') || 'asked for by the spec'}`);
    const hints = [...new Set(missing.flatMap((m) => (m.hint ? [m.hint] : [])))];
    super(
      missing.length === 1
        ? `${lines[0]} (no image was pulled)`
        : `${missing.length} references do not exist (no image was pulled):\n${lines.map((l) => `  ${l}`).join('\n')}`,
      { hint: hints.length > 0 ? hints.join('; ') : 'check each tag, digest and chart version in the spec' },
    );
    this.missing = missing;
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), missing: this.missing };
  }
}

/** An image request with the manifest (or index) its tag named when it was resolved. */
export type ResolvedRequest = ImageRequest & { upstream: Descriptor };

/**
 * Resolve every image (one HEAD each, through the shared limiter). Missing ones are collected
 * (see `isMissingReference`); any other failure stops everything at once.
 */
export async function resolveImages(
  reqs: readonly ImageRequest[],
  opts: { sources: SourceRegistries; limiter: Limiter; signal?: AbortSignal },
): Promise<{ resolved: ResolvedRequest[]; missing: Unresolved[] }> {
  const missing: Array<Unresolved | undefined> = new Array(reqs.length);
  const found = await fanOut(
    reqs,
    async (req, signal, i): Promise<ResolvedRequest | undefined> => {
      const { repository, reference } = opts.sources.open(req.ref);
      try {
        const upstream = await retryTransient(() => repository.resolve(reference, { signal }), { signal });
        return { ...req, upstream };
      } catch (err) {
        if (!isMissingReference(err)) throw err;
        missing[i] = unresolved(req.ref, req.where, err);
        return undefined;
      }
    },
    { limiter: opts.limiter, ...(opts.signal ? { signal: opts.signal } : {}) },
  );
  return {
    resolved: found.filter((r): r is ResolvedRequest => r !== undefined),
    missing: missing.filter((m): m is Unresolved => m !== undefined),
  };
}
