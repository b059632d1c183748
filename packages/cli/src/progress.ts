import type { Writable } from 'node:stream';
import { formatBytes } from '@lading/core/util';

export { formatBytes };

export interface ProgressOptions {
  stream: Writable;
  /** False with --json: nothing is printed. */
  enabled: boolean;
  /** True on a terminal: one redrawn bar line; otherwise plain lines at a bounded rate. */
  tty: boolean;
  /** Minimum milliseconds between plain lines (default 2000). */
  interval?: number;
  /** The clock, in ms (default Date.now; tests inject one). */
  now?: () => number;
}

export interface ProgressState {
  label: string;
  bytesDone: number;
  bytesTotal?: number;
  itemsDone: number;
  itemsTotal?: number;
  /** What the items are ("images", "members"); default "done". */
  itemsLabel?: string;
}

/** Human durations: 250 ms, 12.3 s, 2 min 5 s. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

/**
 * Progress for long operations: a bar (bytes, items done / total) redrawn on a TTY, plain
 * lines at most every `interval` ms otherwise, silent when disabled.
 */
export class Progress {
  private readonly opts: ProgressOptions;
  private state: ProgressState | undefined;
  private lastLine = 0;
  private drawn = false;
  /** When the current phase began: rates are per phase. */
  private started: number;
  private readonly now: () => number;

  constructor(opts: ProgressOptions) {
    this.opts = opts;
    this.now = opts.now ?? Date.now;
    this.started = this.now();
  }

  /** A one-off message line (clears the bar first). */
  line(message: string): void {
    if (!this.opts.enabled) return;
    this.clear();
    this.opts.stream.write(`${message}\n`);
    // On a terminal the bar comes back under the message; plain output waits for the next update.
    if (this.state && this.opts.tty) this.draw(true);
  }

  /**
   * The operation moved. A new label is a new phase: the previous one is finished first (its last
   * state shown). On a terminal the last item finishing is drawn at once (the bar reaches 2/2 when
   * the second item is done, whatever follows); other changes redraw at most every 100 ms.
   */
  update(state: ProgressState): void {
    if (this.state && this.state.label !== state.label) this.done();
    const completed =
      state.itemsTotal !== undefined &&
      state.itemsDone === state.itemsTotal &&
      this.state?.itemsDone !== state.itemsDone;
    this.state = state;
    this.draw(this.opts.tty && completed);
  }

  /**
   * The operation ended. Its last state is shown when nothing showed it yet: off a terminal, a
   * line (a short run that printed nothing, or one that ended within the interval, still ends
   * with a line saying where it got to); on a terminal, the bar is drawn one last time and left
   * on its line, so a finished bar stands at its total instead of vanishing where the throttle
   * last drew it.
   */
  done(): void {
    const s = this.state;
    if (this.opts.enabled && s) {
      const key = this.text(s, this.now()).key;
      if (key !== this.printed) this.draw(true);
      if (this.drawn && this.opts.tty) this.opts.stream.write('\n');
      this.drawn = false;
    }
    this.state = undefined;
    this.printed = undefined;
    this.started = this.now();
  }

  private printed: string | undefined;

  /** The line for a state, and a key that leaves the rate out (it changes with every call). */
  private text(s: ProgressState, now: number): { line: string; key: string; bar: string } {
    const elapsed = (now - this.started) / 1000;
    const rate = elapsed > 0 && s.bytesDone > 0 ? `${formatBytes(Math.round(s.bytesDone / elapsed))}/s` : '';
    const count = s.itemsTotal !== undefined ? `${s.itemsDone}/${s.itemsTotal}` : `${s.itemsDone}`;
    const items = `${count} ${s.itemsLabel ?? 'done'}`;
    const bytes =
      s.bytesTotal !== undefined
        ? `${formatBytes(s.bytesDone)} / ${formatBytes(s.bytesTotal)}`
        : formatBytes(s.bytesDone);
    const what = [bytes, items].join(', ');
    const key = `${s.label}: ${what}`;
    return {
      line: [key, rate].filter(Boolean).join(', '),
      key,
      bar: [what, rate].filter(Boolean).join(', '),
    };
  }

  private clear(): void {
    if (this.drawn && this.opts.tty) this.opts.stream.write('\r\x1b[2K');
    this.drawn = false;
  }

  private draw(force: boolean): void {
    if (!this.opts.enabled || !this.state) return;
    const now = this.now();
    const interval = this.opts.tty ? 100 : (this.opts.interval ?? 2000);
    if (!force && now - this.lastLine < interval) return;
    const s = this.state;
    const t = this.text(s, now);
    // Off a terminal, a line that reports nothing yet ("0 B / 2.9 MiB, 0 done") is left out.
    if (!this.opts.tty && !force && s.bytesDone === 0 && s.itemsDone === 0) return;
    this.lastLine = now;
    if (this.opts.tty) {
      const width = 24;
      // Bytes when there are any to move, else items (a push where every blob was there already).
      const frac = s.bytesTotal
        ? Math.min(1, s.bytesDone / s.bytesTotal)
        : s.itemsTotal
          ? Math.min(1, s.itemsDone / s.itemsTotal)
          : 0;
      const fill = Math.round(frac * width);
      const bar = `[${'#'.repeat(fill)}${'-'.repeat(width - fill)}]`;
      this.opts.stream.write(`\r\x1b[2K${s.label} ${bar} ${t.bar}`);
      this.drawn = true;
      this.printed = t.key;
    } else {
      this.opts.stream.write(`${t.line}\n`);
      this.printed = t.key;
    }
  }
}
