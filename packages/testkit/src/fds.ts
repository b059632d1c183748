import { readdirSync, readlinkSync } from 'node:fs';

/**
 * The descriptors this process holds open on `path` (from /proc/self/fd, Linux), for tests that
 * check a file was closed rather than left to the garbage collector.
 */
export function openDescriptors(path: string): string[] {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === path;
    } catch {
      return false; // the descriptor readdir used itself, closed since
    }
  });
}
