import { setTimeout as sleep } from 'node:timers/promises';
import { AbortedError, isTransientCode } from '../errors/index.ts';

/**
 * Retry policy: exponential backoff with full jitter on transient failures (429, 5xx, connection
 * resets, timeouts), honouring `Retry-After`. Only requests whose body can be sent again are
 * retried; the caller decides that (see `HttpClient`).
 */
export interface RetryOptions {
  /** Total attempts including the first (default 5; 1 disables retries). */
  maxAttempts?: number;
  /** First backoff in ms (default 250). */
  baseDelayMs?: number;
  /** Cap of one backoff in ms (default 10 000). */
  maxDelayMs?: number;
  /** Cap on a server's Retry-After in ms (default 60 000); longer waits fail instead. */
  maxRetryAfterMs?: number;
  /** Statuses retried (default 408, 429, 500, 502, 503, 504). */
  statuses?: readonly number[];
  /** Random source in [0,1) for jitter (tests). */
  random?: () => number;
  /** How a back-off waits (default: a timer, `backoff`). Tests inject one that records the delay. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

export const DEFAULT_RETRY_STATUSES: readonly number[] = [408, 429, 500, 502, 503, 504];

export class RetryPolicy {
  readonly maxAttempts: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  readonly maxRetryAfterMs: number;
  readonly statuses: ReadonlySet<number>;
  private readonly random: () => number;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;

  constructor(opts: RetryOptions = {}) {
    this.maxAttempts = Math.max(1, opts.maxAttempts ?? 5);
    this.baseDelayMs = opts.baseDelayMs ?? 250;
    this.maxDelayMs = opts.maxDelayMs ?? 10_000;
    this.maxRetryAfterMs = opts.maxRetryAfterMs ?? 60_000;
    this.statuses = new Set(opts.statuses ?? DEFAULT_RETRY_STATUSES);
    this.random = opts.random ?? Math.random;
    this.sleep = opts.sleep ?? backoff;
  }

  /** Wait `ms` before the next attempt; rejects with AbortedError when the signal fires. */
  wait(ms: number, signal?: AbortSignal): Promise<void> {
    return this.sleep(ms, signal);
  }

  retryableStatus(status: number): boolean {
    return this.statuses.has(status);
  }

  retryableError(err: unknown): boolean {
    let e: unknown = err;
    for (let i = 0; i < 4 && e; i++) {
      const code = (e as { code?: unknown }).code;
      if (isTransientCode(code)) return true;
      e = (e as { cause?: unknown }).cause;
    }
    return false;
  }

  /**
   * Delay before attempt `attempt + 1` (attempt counts from 1). A server's Retry-After wins
   * (capped by maxRetryAfterMs); otherwise full jitter over an exponential ceiling.
   * Returns undefined when Retry-After asks for longer than allowed.
   */
  delayMs(attempt: number, retryAfter?: string | null): number | undefined {
    const ra = parseRetryAfter(retryAfter);
    if (ra !== undefined) return ra > this.maxRetryAfterMs ? undefined : ra;
    const ceiling = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (attempt - 1));
    return Math.round(ceiling / 2 + (this.random() * ceiling) / 2);
  }
}

/** Retry-After: delta-seconds or an HTTP-date (RFC 9110 §10.2.3); ms, or undefined. */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const t = Date.parse(v);
  if (Number.isNaN(t)) return undefined;
  return Math.max(0, t - now);
}

/** Sleep that rejects with AbortedError when the signal fires. */
export async function backoff(ms: number, signal?: AbortSignal): Promise<void> {
  try {
    await sleep(ms, undefined, signal ? { signal } : undefined);
  } catch (err) {
    throw new AbortedError('operation aborted while waiting to retry', { cause: signal?.reason ?? err });
  }
}
