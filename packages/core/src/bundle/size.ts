import { InvalidInputError } from '../errors/index.ts';

export class InvalidSizeError extends InvalidInputError {
  override readonly code = 'INVALID_SIZE';
  readonly value: string;
  constructor(value: string, reason: string) {
    super(`invalid size "${value}": ${reason}`, {
      hint: 'write a size like 4GiB, 700MB, 1.5G or 123456 (KB/MB/GB/TB = powers of 1000; K/M/G/T and KiB/MiB/GiB/TiB = powers of 1024)',
    });
    this.value = value;
  }
}

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1e3,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1e6,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1e9,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1e12,
  tib: 1024 ** 4,
};

/**
 * Parse a byte size: `123`, `700MB` (10^6), `4GiB` (2^30), `1.5G` (a bare K/M/G/T is binary, as
 * in coreutils `split -b`). Case-insensitive, optional space before the unit. Result is an
 * integer number of bytes >= 1 (fractions of a byte are rounded down).
 */
export function parseSize(value: string | number): number {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 1)
      throw new InvalidSizeError(String(value), 'must be a whole number >= 1');
    return value;
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(value);
  if (!m) throw new InvalidSizeError(value, 'expected a number with an optional unit');
  const unit = UNITS[(m[2] ?? '').toLowerCase()];
  if (unit === undefined) throw new InvalidSizeError(value, `unknown unit "${m[2]}"`);
  const bytes = Math.floor(Number(m[1]) * unit);
  if (!Number.isSafeInteger(bytes)) throw new InvalidSizeError(value, 'too large');
  if (bytes < 1) throw new InvalidSizeError(value, 'must be at least 1 byte');
  return bytes;
}
