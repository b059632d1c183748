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
}

/** Human byte sizes: 1.5 GiB. */

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
  private readonly started: number;
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

  update(state: ProgressState): void {
    this.state = state;
    this.draw(false);
  }

  done(): void {
    if (this.drawn && this.opts.tty) this.clear();
    this.state = undefined;
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
    this.lastLine = now;
    const s = this.state;
    const elapsed = (now - this.started) / 1000;
    const rate = elapsed > 0 ? `${formatBytes(Math.round(s.bytesDone / elapsed))}/s` : '';
    const items = s.itemsTotal !== undefined ? `${s.itemsDone}/${s.itemsTotal}` : `${s.itemsDone}`;
    const bytes =
      s.bytesTotal !== undefined
        ? `${formatBytes(s.bytesDone)} / ${formatBytes(s.bytesTotal)}`
        : formatBytes(s.bytesDone);
    if (this.opts.tty) {
      const width = 24;
      const frac = s.bytesTotal ? Math.min(1, s.bytesDone / s.bytesTotal) : 0;
      const fill = Math.round(frac * width);
      const bar = `[${'#'.repeat(fill)}${'-'.repeat(width - fill)}]`;
      this.opts.stream.write(`\r\x1b[2K${s.label} ${bar} ${bytes} ${items} ${rate}`);
      this.drawn = true;
    } else {
      this.opts.stream.write(`${s.label}: ${bytes}, ${items} done, ${rate}\n`);
    }
  }
}
