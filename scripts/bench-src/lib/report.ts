/**
 * The bench's results and its report: every measured sample is recorded here (`Runs`), then
 * `report` makes the rows (Lading against its peer and against the machine's limits, with the
 * targets of issue 11), and `markdown` / `summaryTable` write them out.
 */
import { GUARDS } from '../experiments/guards.ts';
import { docsFromJson, fmtBytes, fmtSec, log, type Machine } from './common.ts';
import type { Corpus } from './corpus.ts';
import type { ProfileSummary } from './profile.ts';
import { combine, median, type Step } from './run.ts';

export interface Sample {
  rep: number;
  wallMs: number;
  maxRssKb: number;
  steps: Step[];
  extraDiskBytes?: number;
}

export interface Side {
  tool: string;
  samples: Sample[];
  medianMs: number;
  maxRssKb: number;
  /** Bytes moved per second at the median time (bundle or corpus bytes). */
  mibPerSec: number;
  extraDiskBytes?: number;
}

export interface Row {
  id: string;
  title: string;
  lading: Side;
  peer?: Side;
  /** lading.median / peer.median */
  ratio?: number;
  limit?: string;
  /** lading.median / limit.median */
  limitRatio?: number;
  targets: { what: string; value: number | undefined; max: number; met: boolean | undefined }[];
}

/** A guard against hostile input (experiments/guards.ts): its cost against a baseline, a figure, never a pass/fail. */
export interface Guard {
  id: string;
  title: string;
  baseline: string;
  lading: Side;
  base: Side;
  /** lading.median / base.median */
  ratio: number;
}

/** Lading's build, push and verify once on a corpus of another scale (--double, --large). */
export interface DoubleResult {
  scale: number;
  totalBytes: number;
  bundleBytes: number;
  build: Step;
  push: Step;
  verify: Step;
}

/** A run at a large scale, measured on its own and compared with the full run's 1x rows. */
export interface LargeRun extends DoubleResult {
  command: string;
  generated: string;
  loadavg: string;
}

/** How the run was asked for (the report's header). */
export interface RunSettings {
  command: string;
  reps: number;
  /** Parallel transfers of the raw upload, and of the raw pull. */
  concurrency: number;
  pullConcurrency: number;
}

/** Every sample measured, by key (`build.lading`, `limit.pull`, …), and what Lading's --json said. */
export class Runs {
  readonly steps = new Map<string, Sample[]>();
  /** Bytes the file system lost during each push (noisy; for reference). */
  readonly fsDelta: number[] = [];
  /** The --json results of Lading's last create, rebuild and push (their own timings, downloadedBytes…). */
  readonly ladingJson: Record<string, unknown> = {};

  record(key: string, rep: number, parts: Step[], extraDiskBytes?: number): Sample {
    const c = combine(key, parts);
    const s: Sample = { rep, wallMs: c.wallMs, maxRssKb: c.maxRssKb, steps: parts };
    if (extraDiskBytes !== undefined) s.extraDiskBytes = extraDiskBytes;
    (this.steps.get(key) ?? this.steps.set(key, []).get(key)!).push(s);
    log(
      `  ${key} rep ${rep}: ${fmtSec(c.wallMs)}, peak RSS ${Math.round(c.maxRssKb / 1024)} MiB${extraDiskBytes !== undefined ? `, extra disk ${fmtBytes(extraDiskBytes)}` : ''}`,
    );
    return s;
  }
}

export interface Result {
  generated: string;
  loadavgEnd?: string;
  ladingJson?: Record<string, unknown>;
  profiles?: Record<string, ProfileSummary[]>;
  command: string;
  machine: Machine;
  corpus: {
    scale: number;
    images: number;
    multiArch: number;
    layers: number;
    blobs: number;
    totalBytes: number;
    sharedLayerBytes: number;
    largestLayer: number;
    seedMs: number;
  };
  bundleBytes: number;
  peerTarBytes: number;
  reps: number;
  concurrency: number;
  pullConcurrency: number;
  rows: Row[];
  limits: { id: string; title: string; medianMs: number; mibPerSec: number; samplesMs: number[] }[];
  /** Absent in results written before the guards experiment. */
  guards?: Guard[];
  disk: { ladingPushExtraBytes: number; ladingPushFsDeltaBytes: number; peerPushExtraBytes: number };
  /** `--large N`: Lading alone on a corpus of scale N (added to an earlier full run's results). */
  large?: LargeRun;
  rss: {
    maxKb: number;
    doubled?: {
      scale: number;
      totalBytes: number;
      buildKb: number;
      pushKb: number;
      verifyKb: number;
      buildMs: number;
      pushMs: number;
      verifyMs: number;
    };
  };
}

function side(runs: Runs, key: string, tool: string, bytes: number): Side {
  const samples = runs.steps.get(key) ?? [];
  const med = median(samples.map((s) => s.wallMs));
  const s: Side = {
    tool,
    samples,
    medianMs: med,
    maxRssKb: Math.max(0, ...samples.map((x) => x.maxRssKb)),
    mibPerSec: bytes / 2 ** 20 / (med / 1000),
  };
  const disks = samples.map((x) => x.extraDiskBytes).filter((x): x is number => x !== undefined);
  if (disks.length) s.extraDiskBytes = Math.max(...disks);
  return s;
}

/** The results of a run: rows (each against its peer and limit, with the issue's targets), limits, RSS. */
export function report(
  runs: Runs,
  settings: RunSettings,
  m: Machine,
  corpus: Corpus,
  bundleBytes: number,
  peerBytes: number,
  seedMs: number,
  doubled: DoubleResult | undefined,
): Result {
  const limitDefs: [string, string, number][] = [
    ['limit.openssl', '`openssl dgst -sha256` of the bundle (hashing limit)', bundleBytes],
    ['limit.sha256sum', '`sha256sum` of the bundle (coreutils, for reference)', bundleBytes],
    ['limit.cat', '`cat bundle > /dev/null` (read limit)', bundleBytes],
    [
      'limit.pull',
      `raw pull of every blob, ${settings.pullConcurrency} parallel \`curl\` (registry egress)`,
      corpus.totalBytes,
    ],
    [
      'limit.pullwrite',
      `raw pull of every blob into files, ${settings.pullConcurrency} parallel \`curl\`, then \`sync\` (pull-and-write floor)`,
      corpus.totalBytes,
    ],
    ['limit.copy', '`cp` of the bundle, then `sync` (a plain copy of its bytes)', bundleBytes],
    [
      'limit.upload',
      `raw upload of every blob, ${settings.concurrency} parallel \`curl -T\` (registry ingest)`,
      corpus.totalBytes,
    ],
    [
      'limit.startup',
      'start-up of Node + oclif: `lading-load --version` (a fixed cost in every Lading row)',
      0,
    ],
  ];
  const limits = limitDefs.map(([id, title, bytes]) => {
    const samples = (runs.steps.get(id) ?? []).map((s) => s.wallMs);
    const med = median(samples);
    return { id, title, medianMs: med, mibPerSec: bytes / 2 ** 20 / (med / 1000), samplesMs: samples };
  });
  const lim = (id: string): number => limits.find((l) => l.id === id)!.medianMs;
  const row = (
    id: string,
    title: string,
    ladingTool: string,
    peerTool: string | undefined,
    bytes: number,
    limitId: string | undefined,
    maxRatio: number | undefined,
    maxLimit: number | undefined,
  ): Row => {
    const l = side(runs, `${id}.lading`, ladingTool, bytes);
    const r: Row = { id, title, lading: l, targets: [] };
    if (peerTool) {
      r.peer = side(runs, `${id}.peer`, peerTool, bytes);
      r.ratio = l.medianMs / r.peer.medianMs;
      if (maxRatio !== undefined)
        r.targets.push({
          what: `time vs peer <= ${maxRatio}`,
          value: r.ratio,
          max: maxRatio,
          met: r.ratio <= maxRatio,
        });
    }
    if (limitId) {
      r.limit = limitId;
      r.limitRatio = l.medianMs / lim(limitId);
      if (maxLimit !== undefined)
        r.targets.push({
          what: `time vs ${limitId.replace('limit.', '')} limit <= ${maxLimit}`,
          value: r.limitRatio,
          max: maxLimit,
          met: r.limitRatio <= maxLimit,
        });
    }
    return r;
  };
  const rows = [
    row(
      'build',
      'build',
      'lading-build create',
      'skopeo copy --all → one OCI layout, then tar -cf',
      corpus.totalBytes,
      'limit.pullwrite',
      0.45,
      1.5,
    ),
    row(
      'push',
      'push',
      'lading-load push',
      'tar -xf, then skopeo copy --all per image',
      corpus.totalBytes,
      'limit.upload',
      0.7,
      1.15,
    ),
    row(
      'verify',
      'verify',
      'lading-load verify',
      'tar -xf + openssl dgst -verify + sha256sum -c',
      bundleBytes,
      'limit.openssl',
      0.25,
      0.75,
    ),
    row(
      'repush',
      'no-op re-push',
      'lading-load push (again)',
      'tar -xf, then skopeo copy per image (again)',
      corpus.totalBytes,
      undefined,
      undefined,
      undefined,
    ),
    row(
      'repushsv',
      'no-op re-push, --skip-verify',
      'lading-load push --skip-verify (again)',
      undefined,
      corpus.totalBytes,
      undefined,
      undefined,
      undefined,
    ),
  ];
  const rebuild = row(
    'rebuild',
    'rebuild, warm cache, unchanged sources',
    'lading-build create (again, same cache)',
    undefined,
    bundleBytes,
    'limit.copy',
    undefined,
    1.2,
  );
  const downloaded = (runs.ladingJson.rebuild as { downloadedBytes?: number } | undefined)?.downloadedBytes;
  rebuild.targets.push({
    what: 'no layer crosses the network (bytes downloaded)',
    value: downloaded ?? Number.NaN,
    max: 0,
    met: downloaded === 0,
  });
  rows.splice(1, 0, rebuild);
  const repush = rows[4]!;
  repush.targets.push({
    what: 'no-op re-push < 3 s',
    value: repush.lading.medianMs / 1000,
    max: 3,
    met: repush.lading.medianMs < 3000,
  });
  const push = rows[2]!;
  const extra = push.lading.extraDiskBytes ?? 0;
  push.targets.push({
    what: 'no extra disk during push (< 1 MiB: no copy of the bundle)',
    value: extra,
    max: 2 ** 20,
    met: extra < 2 ** 20,
  });
  const guards = GUARDS.map((g): Guard => {
    const l = side(runs, `${g.id}.lading`, 'lading', 0);
    const base = side(runs, `${g.id}.base`, 'baseline', 0);
    return { ...g, lading: l, base, ratio: l.medianMs / base.medianMs };
  });
  const maxKb = Math.max(...rows.map((r) => r.lading.maxRssKb));
  const rss: Result['rss'] = { maxKb };
  if (doubled) {
    rss.doubled = {
      scale: doubled.scale,
      totalBytes: doubled.totalBytes,
      buildKb: doubled.build.maxRssKb,
      pushKb: doubled.push.maxRssKb,
      verifyKb: doubled.verify.maxRssKb,
      buildMs: doubled.build.wallMs,
      pushMs: doubled.push.wallMs,
      verifyMs: doubled.verify.wallMs,
    };
  }
  for (const r of [rows[0]!, rows[2]!, rows[3]!]) {
    r.targets.push({
      what: 'peak RSS <= 200 MB',
      value: (r.lading.maxRssKb * 1024) / 1e6,
      max: 200,
      met: r.lading.maxRssKb * 1024 <= 200e6,
    });
  }
  return {
    generated: new Date().toISOString(),
    command: settings.command,
    machine: m,
    corpus: {
      scale: corpus.scale,
      images: corpus.images.length,
      multiArch: corpus.images.filter((i) => i.platforms.length > 1).length,
      layers: corpus.layerCount,
      blobs: corpus.blobs.length,
      totalBytes: corpus.totalBytes,
      sharedLayerBytes: corpus.sharedLayerBytes,
      largestLayer: corpus.largestLayer,
      seedMs,
    },
    bundleBytes,
    peerTarBytes: peerBytes,
    reps: settings.reps,
    concurrency: settings.concurrency,
    pullConcurrency: settings.pullConcurrency,
    rows,
    limits,
    guards,
    disk: {
      ladingPushExtraBytes: extra,
      ladingPushFsDeltaBytes: Math.max(0, ...runs.fsDelta),
      peerPushExtraBytes: push.peer?.extraDiskBytes ?? 0,
    },
    rss,
  };
}

const mib = (kb: number): string => `${Math.round(kb / 1024)} MiB`;
/** Guards take milliseconds: shown as such (fmtSec would round most of them to 0.00 s). */
const fmtMs = (ms: number): string =>
  Number.isFinite(ms) ? `${ms < 10 ? ms.toFixed(2) : ms.toFixed(0)} ms` : '–';
const ratio = (x: number | undefined): string =>
  x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(2);

export function summaryTable(r: Result): string {
  const lines = [
    '| row | Lading | peer | Lading/peer | Lading MiB/s | limit ratio | Lading peak RSS | peer peak RSS |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const row of r.rows) {
    lines.push(
      `| ${row.title} | ${fmtSec(row.lading.medianMs)} | ${row.peer ? fmtSec(row.peer.medianMs) : '–'} | ${ratio(row.ratio)} | ${row.lading.mibPerSec.toFixed(0)} | ${row.limit ? `${ratio(row.limitRatio)} × ${row.limit.replace('limit.', '')}` : '–'} | ${mib(row.lading.maxRssKb)} | ${row.peer ? mib(row.peer.maxRssKb) : '–'} |`,
    );
  }
  lines.push('', '| limit | median | MiB/s |', '| --- | ---: | ---: |');
  for (const l of r.limits)
    lines.push(`| ${l.title} | ${fmtSec(l.medianMs)} | ${l.mibPerSec > 0 ? l.mibPerSec.toFixed(0) : '–'} |`);
  if (r.guards?.length) {
    lines.push(
      '',
      '| guard | Lading | baseline | | Lading/baseline | Lading peak RSS |',
      '| --- | ---: | --- | ---: | ---: | ---: |',
    );
    for (const g of r.guards)
      lines.push(
        `| ${g.title} | ${fmtMs(g.lading.medianMs)} | ${g.baseline} | ${fmtMs(g.base.medianMs)} | ${ratio(g.ratio)} | ${mib(g.lading.maxRssKb)} |`,
      );
  }
  return lines.join('\n');
}

/**
 * Which thread a profile is of: `node --cpu-prof` names files CPU.<date>.<time>.<pid>.<thread>.<seq>,
 * thread 0 being the main thread (the others are the hash pool's workers).
 */
export function threadOf(file: string): string {
  const m = /\.(\d+)\.(\d+)\.\d+\.cpuprofile$/.exec(file);
  if (!m) return 'one thread';
  return m[2] === '0' ? `main thread of process ${m[1]}` : `worker thread ${m[2]} of process ${m[1]}`;
}

/** Time per GiB and peak RSS at the large scale against this run's 1x medians: linear and flat? */
function largeRows(r: Result): { id: string; oneMs: number; oneKb: number; step: Step }[] {
  const l = r.large;
  if (!l) return [];
  const one = Object.fromEntries(r.rows.map((row) => [row.id, row.lading]));
  return (['build', 'push', 'verify'] as const).map((id) => ({
    id,
    oneMs: one[id]?.medianMs ?? Number.NaN,
    oneKb: one[id]?.maxRssKb ?? Number.NaN,
    step: l[id],
  }));
}

function largeMd(r: Result): string {
  const l = r.large;
  if (!l) return '';
  const k = l.totalBytes / r.corpus.totalBytes;
  const lines = [
    `## At ${fmtBytes(l.totalBytes)}`,
    '',
    `\`${l.command}\` on ${l.generated.slice(0, 16).replace('T', ' ')} UTC (load average at the start \`${l.loadavg}\`):`,
    `Lading alone, once each, on a corpus of scale ${l.scale} (${k.toFixed(1)} × the one above; bundle`,
    `${fmtBytes(l.bundleBytes)}), against the medians of the table above. Time is linear when the time`,
    'ratio is near the size ratio; memory is flat when peak RSS stays within 10 %.',
    '',
    '| command | 1× | large | time ratio | size ratio | MiB/s at 1× → large | peak RSS 1× → large |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const x of largeRows(r)) {
    const rate = (bytes: number, ms: number): string => `${Math.round(bytes / 2 ** 20 / (ms / 1000))}`;
    lines.push(
      `| ${x.id} | ${fmtSec(x.oneMs)} | ${fmtSec(x.step.wallMs)} | ${(x.step.wallMs / x.oneMs).toFixed(1)} | ${k.toFixed(1)} | ${rate(r.bundleBytes, x.oneMs)} → ${rate(l.bundleBytes, x.step.wallMs)} | ${mib(x.oneKb)} → ${mib(x.step.maxRssKb)} |`,
    );
  }
  return `${lines.join('\n')}\n\n`;
}

function profilesMd(r: Result): string {
  if (!r.profiles) return '';
  const parts = [
    "## Where Lading's time goes",
    '',
    'One more run of each command under `node --cpu-prof` (after the timed runs; profiles in `bench-out/profiles/`).',
    'Self time by area, then the functions with the most self time ("idle" is the event loop waiting for I/O).',
    '',
  ];
  for (const [cmd, sums] of Object.entries(r.profiles)) {
    for (const p of sums) {
      parts.push(`### ${cmd}, ${threadOf(p.file)} (${fmtSec(p.totalMs)} of samples)`, '');
      parts.push(
        p.areas
          .filter((a) => a.pct >= 1)
          .map((a) => `${a.area} ${a.pct} %`)
          .join(' · '),
        '',
      );
      parts.push(
        '| function | where | self | % | for (nearest Lading frame) |',
        '| --- | --- | ---: | ---: | --- |',
      );
      for (const f of p.top.slice(0, 10))
        parts.push(
          `| \`${f.fn}\` | ${f.where} | ${fmtSec(f.ms)} | ${f.pct} | ${(f.callers ?? []).join('<br>')} |`,
        );
      parts.push('');
    }
  }
  return parts.join('\n') + '\n';
}

function guardsMd(r: Result): string {
  if (!r.guards?.length) return '';
  return `
Guards (the last table): what refusing hostile input costs, timed inside one process each against
\`@lading/core\` as built, without Node's start-up; figures, not pass/fail (the unit tests assert only
that the input is refused). Hostile references against ordinary ones of the same total bytes: near 1
means the parser stays linear on input built to make a backtracking parser crawl. Chart gzip bombs
against \`gzip -dc\` of the same archive to its end: below 1 means the reader stopped at its limit
instead of inflating the whole bomb; peak RSS is the probe process's.
`;
}

export function markdown(r: Result): string {
  const targets: string[] = [];
  for (const row of r.rows) {
    for (const t of row.targets) {
      const v =
        t.value === undefined ? '–' : t.what.includes('extra disk') ? fmtBytes(t.value) : t.value.toFixed(2);
      targets.push(
        `| ${row.title} | ${t.what} | ${v} | ${t.met === undefined ? '–' : t.met ? 'met' : '**missed**'} |`,
      );
    }
  }
  if (r.rss.doubled) {
    const d = r.rss.doubled;
    const one = Object.fromEntries(r.rows.map((row) => [row.id, row.lading.maxRssKb]));
    for (const [id, kb] of [
      ['build', d.buildKb],
      ['push', d.pushKb],
      ['verify', d.verifyKb],
    ] as const) {
      const before = one[id] ?? 0;
      const growth = before ? (kb - before) / before : Number.NaN;
      targets.push(
        `| ${id} | peak RSS unchanged (within 10 %) when the corpus doubles to ${fmtBytes(d.totalBytes)} | ${mib(before)} → ${mib(kb)} (${growth >= 0 ? '+' : ''}${(growth * 100).toFixed(0)} %) | ${growth <= 0.1 ? 'met' : '**missed**'} |`,
      );
    }
  }
  for (const x of largeRows(r)) {
    const perByte = x.step.wallMs / r.large!.bundleBytes / (x.oneMs / r.bundleBytes);
    const growth = (x.step.maxRssKb - x.oneKb) / x.oneKb;
    targets.push(
      `| ${x.id} | time linear at ${fmtBytes(r.large!.totalBytes)} (time per byte within 25 % of the 1× run) | ${perByte.toFixed(2)} | ${perByte <= 1.25 ? 'met' : '**missed**'} |`,
      `| ${x.id} | peak RSS flat at ${fmtBytes(r.large!.totalBytes)} (within 10 %) | ${mib(x.oneKb)} → ${mib(x.step.maxRssKb)} (${growth >= 0 ? '+' : ''}${(growth * 100).toFixed(0)} %) | ${growth <= 0.1 ? 'met' : '**missed**'} |`,
    );
  }
  const c = r.corpus;
  return `# Benchmarks

Generated by \`${r.command}\` on ${r.generated.slice(0, 16).replace('T', ' ')} UTC. Every figure below comes
from that one run; rerun it to check them (see "Reproduce").

## Machine

* CPU: ${r.machine.cpu}, ${r.machine.nproc} cores (\`nproc\`), flags ${r.machine.cpuFlags.join(', ')}
* Memory: ${r.machine.memTotalGiB} GiB total, ${r.machine.memAvailableGiB} GiB available at the start
* ${r.machine.os}, kernel ${r.machine.kernel}; work folder on \`${r.machine.fs}\`
* Load average (\`/proc/loadavg\`) at the start: \`${r.machine.loadavg}\`, at the end: \`${r.loadavgEnd ?? '?'}\`
* ${Object.entries(r.machine.versions)
    .map(([k, v]) => `${k}: ${v}`)
    .join(' · ')}

\`\`\`
${r.machine.free}
\`\`\`

## Corpus

${c.images} images (${c.multiArch} of them multi-arch OCI indexes, linux/amd64 + linux/arm64/v8), ${c.layers} layers,
${c.blobs} blobs, **${fmtBytes(c.totalBytes)}** in all; ${fmtBytes(c.sharedLayerBytes)}
(${Math.round((100 * c.sharedLayerBytes) / c.totalBytes)} %) in layers shared between images; largest layer
${fmtBytes(c.largestLayer)}. Layers are tars of deterministic pseudo-random bytes, gzip'd in store mode
(incompressible, like compressed content; nobody decompresses a layer here). The corpus is generated once
into \`bench-out/corpus/\` and pushed with skopeo into a Distribution registry on 127.0.0.1
(${fmtSec(c.seedMs)}); every push row pushes into a fresh registry on 127.0.0.1. Lading bundle:
${fmtBytes(r.bundleBytes)}; the peer's tar: ${fmtBytes(r.peerTarBytes)}.

Each row ran ${r.reps} time(s), alternating which side goes first; the table gives the median wall time,
peak RSS is the largest of any process of that side over all repetitions (\`/usr/bin/time -v\`).
Parallel curl uses ${r.pullConcurrency} transfers for the pull and ${r.concurrency} for the upload, the defaults of
\`lading-build create\` and \`lading-load push\`.

## Results

${summaryTable(r)}

Extra disk during push: Lading ${fmtBytes(r.disk.ladingPushExtraBytes)} in the folders it may write to
(HOME, cache, TMPDIR, the bundle's folder), free-space drop beyond what the registry stored
${fmtBytes(r.disk.ladingPushFsDeltaBytes)} (noisy: other processes share the disk); the peer extracts
the whole tar first: ${fmtBytes(r.disk.peerPushExtraBytes)}.
${guardsMd(r)}
${profilesMd(r)}${largeMd(r)}## Targets

| row | target | value | |
| --- | --- | ---: | --- |
${targets.join('\n')}

## Reproduce

\`\`\`sh
scripts/setup
${r.command}${r.large ? `\n${r.large.command}` : ''}
\`\`\`
`;
}

export async function fromJson(file: string): Promise<void> {
  console.log(summaryTable(await docsFromJson(file, 'benchmarks', markdown)));
}
