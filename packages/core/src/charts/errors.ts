import semver from 'semver';
import { InvalidInputError, NotFoundError, RemoteError } from '../errors/index.ts';

/**
 * What works when no version matches: a prerelease the range left out (semver takes one only when
 * the range names a prerelease of the same major.minor.patch), else the newest versions to pick
 * from. The spec has no switch for prereleases; the range says it.
 */
function noMatchHint(constraint: string, available: readonly string[]): string {
  const opts = { loose: true, includePrerelease: true };
  const range = semver.validRange(constraint, { loose: true }) ? constraint : undefined;
  const pre = range
    ? available.find((v) => semver.prerelease(v, true) !== null && semver.satisfies(v, range, opts))
    : undefined;
  if (pre) {
    const p = semver.parse(pre, true) as semver.SemVer;
    const base = `${p.major}.${p.minor}.${p.patch}`;
    const widened = constraint.includes('||')
      ? ''
      : `, or name a prerelease of ${base} in the range (version: ">=${base}-0 ${constraint.trim()}")`;
    return `"${constraint}" leaves out prereleases such as ${pre}: write it exactly (version: ${pre})${widened} — semver ranges take a prerelease only of a version they name with one`;
  }
  const newest = available.slice(0, 3).join(', ');
  return `write a version the repository has (newest: ${newest}) or a range that takes one; a prerelease is taken only when written exactly (1.2.0-rc.1) or named in the range (">=1.2.0-0")`;
}

/** No version of a chart in a repository satisfies the requested version or range (exit 4). */
export class ChartNotFoundError extends NotFoundError {
  override readonly code = 'CHART_NOT_FOUND';
  readonly chart: string;
  readonly constraint: string;
  readonly repo: string;
  /** Every version the repository lists for the chart, newest first (empty when the chart is unknown). */
  readonly available: string[];
  constructor(chart: string, constraint: string, repo: string, available: string[]) {
    const shown =
      available.slice(0, 20).join(', ') + (available.length > 20 ? `, … (${available.length})` : '');
    super(
      available.length === 0
        ? `chart "${chart}" is not in the repository ${repo}`
        : `no version of chart "${chart}" matches "${constraint}" in ${repo}; available: ${shown}`,
      {
        hint:
          available.length === 0
            ? 'check the chart name and the repository URL in the spec'
            : noMatchHint(constraint, available),
      },
    );
    this.chart = chart;
    this.constraint = constraint;
    this.repo = repo;
    this.available = available;
  }
}

/** A chart repository failed: network, HTTP status, malformed index.yaml (exit 4). */
export class ChartRepoError extends RemoteError {
  override readonly code: string = 'CHART_REPO_FAILED';
  readonly url: string;
  readonly status: number | undefined;
  constructor(url: string, message: string, opts: { hint?: string; cause?: unknown; status?: number } = {}) {
    super(`chart repository ${url}: ${message}`, opts);
    this.url = url;
    this.status = opts.status;
  }
}

/** The chart repository refused the credentials (401/403) (exit 4). */
export class ChartRepoAuthError extends ChartRepoError {
  override readonly code = 'CHART_REPO_AUTH';
}

/** The chart repository's TLS certificate is not trusted or not valid for its name (exit 4). */
export class ChartRepoTLSError extends ChartRepoError {
  override readonly code = 'CHART_REPO_TLS';
}

/** Why an archive was refused; stable, for tests and callers. */
export type UnsafeArchiveReason =
  | 'absolute-path'
  | 'path-traversal'
  | 'outside-root'
  | 'link'
  | 'device'
  | 'unsupported-type'
  | 'duplicate'
  | 'too-many-entries'
  | 'entry-too-large'
  | 'total-too-large'
  | 'malformed';

/** A chart archive that could escape its folder, exhaust memory or disk, or is not a tar (exit 2). */
export class UnsafeArchiveError extends InvalidInputError {
  override readonly code = 'UNSAFE_CHART_ARCHIVE';
  readonly reason: UnsafeArchiveReason;
  readonly source: string;
  readonly entry: string | undefined;
  constructor(source: string, reason: UnsafeArchiveReason, detail: string, entry?: string) {
    super(`${source}: refused chart archive (${reason}): ${detail}`, {
      hint: 'the archive is malformed or malicious; get the chart from a trusted source (limits can be raised by the caller)',
    });
    this.reason = reason;
    this.source = source;
    this.entry = entry;
  }
}

/** A chart that is not a valid Helm chart (no Chart.yaml, no name/version…) (exit 2). */
export class InvalidChartError extends InvalidInputError {
  override readonly code = 'INVALID_CHART';
  readonly source: string;
  constructor(source: string, detail: string, hint?: string) {
    super(`${source}: ${detail}`, {
      hint: hint ?? 'a chart needs a Chart.yaml with at least name and version (helm lint helps)',
    });
    this.source = source;
  }
}

/** A version constraint that is neither a version nor a semver range (exit 2). */
export class InvalidVersionConstraintError extends InvalidInputError {
  override readonly code = 'INVALID_VERSION_CONSTRAINT';
  readonly constraint: string;
  constructor(constraint: string, chart: string) {
    super(`version "${constraint}" of chart "${chart}" is neither a version nor a semver range`, {
      hint: 'write an exact version (18.1.5) or a range (^18.1.0, ~1.2, >=1.0 <2.0)',
    });
    this.constraint = constraint;
  }
}
