import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type Server } from 'node:net';
import { startTcpProxy, startTripwire } from '@lading/testkit';

/** An echo server: what a client sends comes back. */
async function echo(): Promise<{ server: Server; host: string }> {
  const server = createServer((s) => s.pipe(s));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, host: `127.0.0.1:${(server.address() as { port: number }).port}` };
}

describe('startTcpProxy / startTripwire', () => {
  it('relays both ways and counts the bytes; whenSent/whenReceived resolve on the bytes, not a timer', async () => {
    const e = await echo();
    const p = await startTcpProxy(e.host);
    try {
      const c = connect(p.port, '127.0.0.1');
      let back = 0;
      const echoed = new Promise<void>((resolve) =>
        c.on('data', (d: Buffer) => {
          back += d.length;
          if (back >= 10_000) resolve();
        }),
      );
      const sent = p.whenSent(10_000);
      const received = p.whenReceived(10_000);
      c.write(Buffer.alloc(10_000, 7));
      await Promise.all([sent, received, echoed]);
      assert.equal(p.sent, 10_000);
      assert.equal(p.received, 10_000);
      assert.equal(back, 10_000);
      c.destroy();
    } finally {
      await p.stop();
      e.server.close();
    }
  });

  it('a tripwire runs onTrip after N bytes one way, then relays nothing and refuses connections', async () => {
    const e = await echo();
    let trips = 0;
    const w = await startTripwire({
      target: e.host,
      afterBytes: 1000,
      direction: 'up',
      onTrip: () => void trips++,
    });
    try {
      const c = connect(w.port, '127.0.0.1');
      c.on('error', () => {});
      c.write(Buffer.alloc(999, 1));
      c.write(Buffer.alloc(10, 1));
      await w.tripped;
      assert.equal(trips, 1);
      assert.equal(w.done, true);
      const refused = connect(w.port, '127.0.0.1');
      const [err] = (await once(refused, 'error')) as [NodeJS.ErrnoException];
      assert.equal(err.code, 'ECONNREFUSED');
    } finally {
      await w.stop();
      e.server.close();
    }
  });
});
