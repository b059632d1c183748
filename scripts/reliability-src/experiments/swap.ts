/**
 * Swapped bundle after verify (issue 10 §3): an older bundle, validly signed with the same key, is
 * renamed over the bundle while `serve` or `push` runs. What is used must be what was verified.
 *
 * The swap lands at a chosen point of the run, deterministically: the command runs in slices
 * (SIGSTOP, look, SIGCONT, about every millisecond) and the rename is done while every thread is
 * stopped, from what the process holds open at that moment (`/proc/PID/fd`, by inode) and what it has
 * printed. Two points:
 * - after verification opened the file: the process holds the bundle open twice (verification's
 *   hash-worker handle and its member walk; push's stamp check before it holds one) and has not yet
 *   printed `verified …`. Verification reads the newer bundle through the files it already has open;
 *   the reopen that follows finds the older one: exit 3 (BUNDLE_CHANGED_SINCE_VERIFY), nothing
 *   served or pushed.
 * - before verification (push): while push's verified-stamp check holds the only open of the file,
 *   before verification opens it. Verification then reads the older bundle, and exit 0 is right only
 *   if everything the run reports and pushes is the older bundle: `--json` name, version and
 *   SHA256SUMS digest, and the registry's tags equal a plain push of the older bundle.
 */
import { spawn } from 'node:child_process';
import { copyFile, mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { specYaml } from '../../bench-src/lib/common.ts';
import type { Ran } from '../lib/proc.ts';
import { catalog, type RegistryState, registryState, sameState, stateDiff } from '../lib/registry-state.ts';
import { memberName, parseTar } from '../lib/tar.ts';
import { sha256 } from './context.ts';
import type { TrustCase, TrustRunners } from './trust.ts';

/** What the process held and had printed when it was stopped. */
interface Seen {
  /** Open file descriptors on the bundle file that was there at the start (its inode). */
  fds: number;
  stdout: string;
  stderr: string;
}

interface SwapRan extends Ran {
  /** What the process held and had said when the rename was done; undefined when it never was. */
  swappedAt?: Seen;
  /** serve printed its readiness line (it was then stopped with SIGTERM). */
  ready: boolean;
}

/** Every thread of `pid` is stopped (state T or t), or the process is gone. */
async function allStopped(pid: number): Promise<boolean> {
  const tasks = await readdir(`/proc/${pid}/task`).catch(() => [] as string[]);
  for (const t of tasks) {
    const st = await readFile(`/proc/${pid}/task/${t}/stat`, 'utf8').catch(() => '');
    const state = st.charAt(st.lastIndexOf(')') + 2);
    if (st && state !== 'T' && state !== 't') return false;
  }
  return true;
}

async function fdsOn(pid: number, ino: number): Promise<number> {
  let n = 0;
  for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => [] as string[])) {
    const s = await stat(`/proc/${pid}/fd/${fd}`).catch(() => undefined);
    if (s?.ino === ino) n++;
  }
  return n;
}

/**
 * Run `cmd args` in slices; while it is stopped, rename `swap.from` over `swap.to` the first time
 * `when` says so. SIGTERM once `readyRe` shows on stdout (serve).
 */
async function runSwap(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  swap: { from: string; to: string },
  when: (s: Seen) => boolean,
  readyRe?: RegExp,
): Promise<SwapRan> {
  const ino = (await stat(swap.to)).ino;
  const t0 = performance.now();
  const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let ready = false;
  let closed = false;
  let swappedAt: Seen | undefined;
  child.stdout.on('data', (d: Buffer) => {
    stdout += d;
    if (readyRe && !ready && readyRe.test(stdout)) {
      ready = true;
      child.kill('SIGTERM');
    }
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d;
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 180_000);
  const done = new Promise<number>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      closed = true;
      resolve(code ?? (signal ? 128 : 1));
    });
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${cmd} did not start`);
  while (!closed && !swappedAt) {
    try {
      process.kill(pid, 'SIGSTOP');
    } catch {
      break; // gone
    }
    try {
      for (let i = 0; i < 2000 && !(await allStopped(pid)); i++) await sleep(0);
      // what it wrote before it stopped: let the pipes drain into stdout/stderr
      await sleep(1);
      const seen: Seen = { fds: await fdsOn(pid, ino), stdout, stderr };
      if (when(seen)) {
        await rename(swap.from, swap.to);
        swappedAt = seen;
      }
    } finally {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // gone
      }
    }
    await sleep(1);
  }
  const code = await done;
  clearTimeout(timer);
  return {
    code,
    ms: performance.now() - t0,
    stdout,
    stderr,
    killed: false,
    timedOut: false,
    ready,
    ...(swappedAt ? { swappedAt } : {}),
  };
}

const VERIFIED = /^verified /m;

/** `sha256:<hex>` of a bundle's SHA256SUMS member (its identity, as `verify --json` gives it). */
async function sumsDigest(bundle: string): Promise<string> {
  const sums = parseTar(await readFile(bundle)).find((m) => memberName(m) === 'SHA256SUMS');
  if (!sums) throw new Error(`${bundle}: no SHA256SUMS`);
  return `sha256:${sha256(sums.data)}`;
}

function atSwap(s: SwapRan): string {
  return s.swappedAt
    ? `swapped with ${s.swappedAt.fds} open file(s) on the bundle, ${VERIFIED.test(s.swappedAt.stderr) ? 'after' : 'before'} \`verified\``
    : 'the swap point was never reached';
}

export async function swapCases(r: TrustRunners): Promise<TrustCase[]> {
  const dir = join(r.dir, 'swap');
  await mkdir(dir, { recursive: true });
  // the older bundle: same name and key, an earlier version with fewer images
  const spec = join(dir, 'lading.yaml');
  await writeFile(
    spec,
    specYaml(
      'rel',
      '0.9.0',
      r.images.slice(0, 2).map((i) => `${r.srcHost}/${i.name}:${i.tag}`),
    ),
  );
  const old = join(dir, 'old.tar');
  const made = await r.create(spec, old);
  if (made.code !== 0)
    throw new Error(`create of the older bundle failed (exit ${made.code}): ${made.stderr}`);
  const oldSums = await sumsDigest(old);
  // what a plain push of the older bundle gives
  let oldState: RegistryState;
  {
    const reg = await r.registry();
    const env = await r.env();
    const p = await r.push(old, reg.host, env, []);
    if (p.code !== 0) throw new Error(`push of the older bundle failed (exit ${p.code}): ${p.stderr}`);
    oldState = await registryState(reg.url);
    await reg.stop();
  }

  const out: TrustCase[] = [];
  const prepare = async (name: string) => {
    const caseDir = join(dir, name);
    await mkdir(caseDir, { recursive: true });
    const target = join(caseDir, 'rel.tar');
    const from = join(caseDir, 'older.tar');
    await copyFile(r.clean, target);
    await copyFile(old, from);
    return { target, from };
  };
  const afterOpen = (s: Seen) => s.fds >= 2 && !VERIFIED.test(s.stderr);

  /**
   * `command` (serve or push) with the older bundle renamed over its bundle once verification has it
   * open: exit 3, never ready, nothing `leaked` (served or pushed) is the only right outcome.
   */
  const afterOpenCase = async (
    command: 'serve' | 'push',
    args: string[],
    leakedBy: (ran: SwapRan) => Promise<string[]>,
    readyRe?: RegExp,
  ): Promise<void> => {
    const { target, from } = await prepare(`${command}-after-open`);
    const ran = await runSwap(
      r.node,
      [r.loadBin, command, target, '--key', r.pub, ...args],
      await r.env(),
      { from, to: target },
      afterOpen,
      readyRe,
    );
    const leaked = await leakedBy(ran);
    const landed = ran.swappedAt !== undefined && afterOpen(ran.swappedAt);
    // serve that got as far as ready failed, whatever it printed
    const ok = landed && ran.code === 3 && !ran.ready && leaked.length === 0;
    const verb = command === 'serve' ? 'served' : 'pushed';
    out.push({
      id: `swap:${command}:after-open`,
      what: `an older bundle (same key, valid) renamed over the bundle once \`${command}\`’s verification has it open`,
      exit: ran.code,
      fetchExit: -1,
      leaked,
      expected: `exit 3, nothing ${verb}`,
      ok,
      message: `${atSwap(ran)}; ${r.lastError(ran)}`,
    });
    r.log(
      `swap:${command}:after-open: exit ${ran.code}, ${atSwap(ran)}, ${verb} ${leaked.length} ${ok ? 'ok' : 'PROBLEM'}`,
    );
  };

  // serve: what it printed once ready is what it served
  await afterOpenCase(
    'serve',
    ['--address', '127.0.0.1:0'],
    async (ran) => (ran.ready ? ran.stdout.split('\n').filter((l) => /sha256:/.test(l)) : []),
    /press Ctrl-C to stop/,
  );

  // push: what the registry holds afterwards
  {
    const reg = await r.registry();
    await afterOpenCase('push', ['--registry', reg.host, '--plain-http'], () => catalog(reg.url));
    await reg.stop();
  }

  // push, swapped before verification: while the verified-stamp check holds the only open
  {
    const { target, from } = await prepare('push-before-verify');
    const reg = await r.registry();
    const before = (s: Seen) => s.fds === 1 && !/verif/i.test(s.stderr);
    const ran = await runSwap(
      r.node,
      [r.loadBin, 'push', target, '--key', r.pub, '--registry', reg.host, '--plain-http', '--json'],
      await r.env(),
      { from, to: target },
      before,
    );
    const state = await registryState(reg.url);
    await reg.stop();
    let reported: { name?: string; version?: string; sumsDigest?: string } = {};
    try {
      reported = (JSON.parse(ran.stdout) as { bundle?: typeof reported }).bundle ?? {};
    } catch {
      // not a result document: the exit code says what happened
    }
    const problems: string[] = [];
    if (ran.swappedAt === undefined) problems.push('the swap point was never reached');
    if (ran.code !== 0) problems.push(`exit ${ran.code}: ${r.lastError(ran)}`);
    if (reported.name !== 'rel' || reported.version !== '0.9.0')
      problems.push(`reported ${reported.name}@${reported.version}, not the older rel@0.9.0`);
    if (reported.sumsDigest !== oldSums)
      problems.push(`reported SHA256SUMS ${reported.sumsDigest}, not the older bundle's ${oldSums}`);
    if (!sameState(oldState, state))
      problems.push(`registry differs from the older bundle's push: ${stateDiff(oldState, state)}`);
    const ok = problems.length === 0;
    out.push({
      id: 'swap:push:before-verify',
      what: 'an older bundle (same key, valid) renamed over the bundle during `push`’s verified-stamp check, before verification opens it',
      exit: ran.code,
      fetchExit: -1,
      leaked: Object.keys(state).filter((k) => state[k] !== oldState[k]),
      expected:
        'exit 0 with the older bundle verified, reported (--json name, version, SHA256SUMS) and pushed, and nothing of the newer one',
      ok,
      message: ok
        ? `${atSwap(ran)}; verified and pushed rel@0.9.0, SHA256SUMS ${oldSums.slice(0, 19)}…, registry = a plain push of it`
        : problems.join('; '),
    });
    r.log(
      `swap:push:before-verify: exit ${ran.code}, ${atSwap(ran)}, ${ok ? 'the older bundle, consistently ok' : `PROBLEM ${problems.join('; ')}`}`,
    );
  }
  return out;
}
