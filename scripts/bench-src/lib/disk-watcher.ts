/**
 * Watches the disk while a push runs: the bytes in the folders the process may write to (its HOME,
 * cache, TMPDIR, the bundle's folder minus the bundle), and the drop of free space on the file system
 * minus what the registry stored meanwhile (noisy when other processes write to the same disk).
 */
import { stat } from 'node:fs/promises';
import { duBytes, freeBytes } from './run.ts';

export async function diskWatcher(
  dirs: string[],
  exclude: string[],
  registryData: string,
  fsPath: string,
): Promise<{ sample(): Promise<void>; peak(): number; fsPeak(): number }> {
  let excludeBytes = 0;
  for (const f of exclude)
    excludeBytes += await stat(f)
      .then((s) => s.size)
      .catch(() => 0);
  const base = (await Promise.all(dirs.map(duBytes))).reduce((a, b) => a + b, 0) - excludeBytes;
  const free0 = await freeBytes(fsPath);
  const reg0 = await duBytes(registryData);
  let peak = 0;
  let fsPeak = 0;
  return {
    async sample() {
      const now = (await Promise.all(dirs.map(duBytes))).reduce((a, b) => a + b, 0) - excludeBytes;
      peak = Math.max(peak, now - base);
      const drop = free0 - (await freeBytes(fsPath));
      const reg = (await duBytes(registryData)) - reg0;
      fsPeak = Math.max(fsPeak, drop - reg);
    },
    peak: () => peak,
    fsPeak: () => fsPeak,
  };
}
