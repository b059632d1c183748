/**
 * Run by experiments/guards.ts in a process of its own (for its peak RSS): times one guard of
 * @lading/core (as built) from inside, without Node's start-up, and prints the figures as JSON.
 *   guard-probe.ts refs N        parse the hostile references N times each, then ordinary
 *                                references of the same total bytes
 *   guard-probe.ts chart FILE REASON
 *                                read a chart archive that must be refused as unsafe, for REASON
 * Exit 3 when a guard did not hold (a hostile input accepted, an ordinary one refused).
 */
import { readFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { CORE_JS } from '../lib/common.ts';

interface Core {
  parseReference(s: string): unknown;
  readChartArchive(bytes: Uint8Array, opts: { source: string }): Promise<unknown>;
  InvalidReferenceError: new (...args: never[]) => Error;
  UnsafeArchiveError: new (...args: never[]) => Error & { reason: string };
}

/** The inputs of reference.test.ts's hostile-input case: long runs built to make a backtracking parser crawl. */
const HOSTILE_REFERENCES = [
  'a'.repeat(50_000) + '!',
  'a-'.repeat(25_000) + '!',
  'ab.'.repeat(20_000) + '/x!',
  'x@' + 'a.'.repeat(25_000),
];

const core = (await import(pathToFileURL(CORE_JS).href)) as Core;
const [what, arg, expected] = process.argv.slice(2);
let held = true;

if (what === 'refs') {
  const n = Number(arg);
  let refused = 0;
  let bytes = 0;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    for (const s of HOSTILE_REFERENCES) {
      bytes += s.length;
      try {
        core.parseReference(s);
      } catch (err) {
        if (err instanceof core.InvalidReferenceError) refused++;
        else throw err;
      }
    }
  }
  const hostileMs = performance.now() - t0;
  const ordinary: string[] = [];
  for (let size = 0, i = 0; size < bytes; i++) {
    const r = `registry.example.com:5000/team-${i % 7}/app-${i % 13}:1.${i % 100}.${i % 10}`;
    ordinary.push(r);
    size += r.length;
  }
  const t1 = performance.now();
  for (const r of ordinary) core.parseReference(r); // throws (exit 1) if one is refused
  const ordinaryMs = performance.now() - t1;
  const count = n * HOSTILE_REFERENCES.length;
  held = refused === count;
  console.log(
    JSON.stringify({ count, refused, bytes, hostileMs, ordinaryCount: ordinary.length, ordinaryMs }),
  );
} else if (what === 'chart' && arg) {
  const bytes = await readFile(arg);
  let reason: string | undefined;
  const t0 = performance.now();
  try {
    await core.readChartArchive(bytes, { source: arg });
  } catch (err) {
    if (err instanceof core.UnsafeArchiveError) reason = err.reason;
    else throw err;
  }
  const ms = performance.now() - t0;
  held = reason === expected;
  console.log(JSON.stringify({ ms, archiveBytes: bytes.length, reason: reason ?? null }));
} else {
  console.error('usage: guard-probe.ts refs N | chart FILE REASON');
  process.exit(2);
}
process.exit(held ? 0 : 3);
