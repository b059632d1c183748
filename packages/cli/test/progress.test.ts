import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { formatBytes, formatDuration, Progress } from '../src/progress.ts';

function capture(): { stream: Writable; text: () => string } {
  let out = '';
  const stream = new Writable({
    write(chunk: Buffer, _e, cb) {
      out += chunk.toString();
      cb();
    },
  });
  return { stream, text: () => out };
}

const ESC = '\x1b';

describe('progress output', () => {
  it('plain mode prints messages once and progress lines at a bounded rate', () => {
    const c = capture();
    let t = 1_000_000;
    const p = new Progress({ stream: c.stream, enabled: true, tty: false, interval: 60_000, now: () => t });
    t += 2000;
    p.update({ label: 'push', bytesDone: 10, bytesTotal: 100, itemsDone: 0, itemsTotal: 2 });
    p.line('pushed demo/app:1.0');
    t += 1000; // within the interval: no line
    p.update({ label: 'push', bytesDone: 50, bytesTotal: 100, itemsDone: 1, itemsTotal: 2 });
    p.line('pushed demo/big:1.0');
    t += 60_000; // the interval has passed: a line, with the rate over the whole run
    p.update({ label: 'push', bytesDone: 6300, bytesTotal: 6300, itemsDone: 2, itemsTotal: 2 });
    assert.deepEqual(c.text().split('\n'), [
      'push: 10 B / 100 B, 0/2 done, 5 B/s',
      'pushed demo/app:1.0',
      'pushed demo/big:1.0',
      'push: 6.2 KiB / 6.2 KiB, 2/2 done, 100 B/s',
      '',
    ]);
    assert.ok(!c.text().includes('\r'), 'no carriage returns off a terminal');
  });

  it('plain mode: no line before anything moved, no dangling comma, a completion line on a short run', () => {
    const c = capture();
    let t = 1_000_000;
    const p = new Progress({ stream: c.stream, enabled: true, tty: false, interval: 60_000, now: () => t });
    p.update({ label: 'verify', bytesDone: 0, bytesTotal: 3000, itemsDone: 0, itemsLabel: 'members' });
    assert.equal(c.text(), '', 'nothing to report yet: no "0 B / …, 0 done" line');
    t += 500;
    p.update({ label: 'verify', bytesDone: 3000, bytesTotal: 3000, itemsDone: 12, itemsLabel: 'members' });
    p.done();
    assert.deepEqual(c.text().split('\n'), ['verify: 2.9 KiB / 2.9 KiB, 12 members, 5.9 KiB/s', '']);
    const d = capture();
    const q = new Progress({ stream: d.stream, enabled: true, tty: false, interval: 60_000, now: () => t });
    q.update({ label: 'push', bytesDone: 0, itemsDone: 1, itemsTotal: 2 });
    q.done();
    assert.deepEqual(d.text().split('\n'), ['push: 0 B, 1/2 done', ''], 'no dangling comma without a rate');
  });

  it('tty mode redraws one bar line; done() leaves it standing at its last state', () => {
    const c = capture();
    const p = new Progress({ stream: c.stream, enabled: true, tty: true });
    p.update({
      label: 'build',
      bytesDone: 512,
      bytesTotal: 1024,
      itemsDone: 1,
      itemsTotal: 4,
      itemsLabel: 'images',
    });
    assert.ok(
      c
        .text()
        .startsWith(`\r${ESC}[2Kbuild [${'#'.repeat(12)}${'-'.repeat(12)}] 512 B / 1.0 KiB, 1/4 images`),
      c.text(),
    );
    p.done();
    assert.ok(c.text().endsWith('images\n'), JSON.stringify(c.text()));
  });

  it('tty mode: a bar ends at its total even when the last updates came within the redraw interval', () => {
    const c = capture();
    let t = 1_000_000;
    const p = new Progress({ stream: c.stream, enabled: true, tty: true, now: () => t });
    p.update({
      label: 'pulling',
      bytesDone: 1024,
      bytesTotal: 4403,
      itemsDone: 0,
      itemsTotal: 2,
      itemsLabel: 'images',
    });
    t += 10; // throttled: bytes alone do not redraw within 100 ms
    p.update({
      label: 'pulling',
      bytesDone: 4403,
      bytesTotal: 4403,
      itemsDone: 0,
      itemsTotal: 2,
      itemsLabel: 'images',
    });
    t += 10;
    p.update({
      label: 'pulling',
      bytesDone: 4403,
      bytesTotal: 4403,
      itemsDone: 1,
      itemsTotal: 2,
      itemsLabel: 'images',
    });
    assert.match(c.text(), /1\.0 KiB \/ 4\.3 KiB, 0\/2 images$/, 'still throttled');
    t += 10; // the last item finishing is drawn at once
    p.update({
      label: 'pulling',
      bytesDone: 4403,
      bytesTotal: 4403,
      itemsDone: 2,
      itemsTotal: 2,
      itemsLabel: 'images',
    });
    assert.match(
      c.text(),
      /\[#{24}\] 4\.3 KiB \/ 4\.3 KiB, 2\/2 images, [^\n]*$/,
      'the push bar reaches 2/2',
    );
    // The next phase: the finished bar stays on its line, the new one is drawn below it.
    t += 10;
    p.update({
      label: 'writing',
      bytesDone: 0,
      bytesTotal: 3000,
      itemsDone: 0,
      itemsTotal: 12,
      itemsLabel: 'members',
    });
    t += 10;
    p.update({
      label: 'writing',
      bytesDone: 3000,
      bytesTotal: 3000,
      itemsDone: 0,
      itemsTotal: 12,
      itemsLabel: 'members',
    });
    p.done();
    const shown = c
      .text()
      .split('\n')
      .map((l) => l.split(`\r${ESC}[2K`).at(-1));
    assert.equal(shown.length, 3, JSON.stringify(c.text()));
    assert.match(shown[0] ?? '', /^pulling \[#{24}\] 4\.3 KiB \/ 4\.3 KiB, 2\/2 images/);
    assert.match(shown[1] ?? '', /^writing \[#{24}\] 2\.9 KiB \/ 2\.9 KiB, 0\/12 members/);
    assert.equal(shown[2], '');
  });

  it('tty mode: with nothing to move in bytes, the bar follows the items', () => {
    const c = capture();
    const p = new Progress({ stream: c.stream, enabled: true, tty: true });
    p.update({
      label: 'pushing',
      bytesDone: 0,
      bytesTotal: 0,
      itemsDone: 2,
      itemsTotal: 2,
      itemsLabel: 'images',
    });
    assert.match(c.text(), /pushing \[#{24}\] 0 B \/ 0 B, 2\/2 images/);
  });

  it('plain mode: a new phase first prints where the previous one ended', () => {
    const c = capture();
    let t = 1_000_000;
    const p = new Progress({ stream: c.stream, enabled: true, tty: false, interval: 60_000, now: () => t });
    t += 1000;
    p.update({
      label: 'pulling',
      bytesDone: 455,
      bytesTotal: 910,
      itemsDone: 0,
      itemsTotal: 2,
      itemsLabel: 'images',
    });
    t += 1000;
    p.update({
      label: 'pulling',
      bytesDone: 910,
      bytesTotal: 910,
      itemsDone: 2,
      itemsTotal: 2,
      itemsLabel: 'images',
    });
    t += 1000; // a new phase: its rate counts from here
    p.update({
      label: 'writing',
      bytesDone: 100,
      bytesTotal: 3000,
      itemsDone: 1,
      itemsTotal: 12,
      itemsLabel: 'members',
    });
    t += 1000;
    p.update({
      label: 'writing',
      bytesDone: 3000,
      bytesTotal: 3000,
      itemsDone: 12,
      itemsTotal: 12,
      itemsLabel: 'members',
    });
    p.done();
    assert.deepEqual(c.text().split('\n'), [
      'pulling: 455 B / 910 B, 0/2 images, 455 B/s',
      'pulling: 910 B / 910 B, 2/2 images, 303 B/s',
      'writing: 2.9 KiB / 2.9 KiB, 12/12 members, 2.9 KiB/s',
      '',
    ]);
  });

  it('prints nothing when disabled (--json)', () => {
    const c = capture();
    const p = new Progress({ stream: c.stream, enabled: false, tty: true });
    p.update({ label: 'x', bytesDone: 1, itemsDone: 0 });
    p.line('hello');
    p.done();
    assert.equal(c.text(), '');
  });

  it('formats sizes and durations for people', () => {
    assert.equal(formatBytes(0), '0 B');
    assert.equal(formatBytes(1536), '1.5 KiB');
    assert.equal(formatBytes(3 * 1024 ** 3), '3.0 GiB');
    assert.equal(formatDuration(250), '250 ms');
    assert.equal(formatDuration(12_300), '12.3 s');
    assert.equal(formatDuration(125_000), '2 min 5 s');
  });
});
