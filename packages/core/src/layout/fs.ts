import { randomBytes } from 'node:crypto';
import path from 'node:path';

/** `<base>_<random>`: a name no other writer (thread or process) will pick. */
export function tempName(dir: string, base: string): string {
  return path.join(dir, `${base}_${randomBytes(12).toString('hex')}`);
}

/** A promise-chain mutex: runs critical sections one after another. */
export class Mutex {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn, fn);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

export function isErrno(err: unknown, code: string): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === code;
}
