import { createConnection, createServer, type Socket } from 'node:net';

/**
 * A TCP relay on 127.0.0.1 in front of a real server that, once `afterBytes` bytes have gone
 * through it in one direction, runs `onTrip` (a test stops the real server there: the registry
 * or S3 server dies mid-transfer), then drops every connection and stops listening, so a retry
 * finds nothing (connection refused). Deterministic where "kill it after a while" is a race.
 */
export interface Tripwire {
  /** '127.0.0.1:PORT': what the client is given instead of the server's own address. */
  host: string;
  port: number;
  /** Resolves when the wire tripped (after `onTrip` ran). */
  tripped: Promise<void>;
  /** Whether it has tripped. */
  readonly done: boolean;
  stop(): Promise<void>;
}

export interface TripwireOptions {
  /** 'HOST:PORT' of the real server. */
  target: string;
  /** Bytes relayed in `direction` before the wire trips. */
  afterBytes: number;
  /** 'up': client → server (an upload), 'down': server → client (a download). */
  direction: 'up' | 'down';
  /** Runs when the wire trips, before the connections drop (e.g. `() => registry.stop()`). */
  onTrip?: () => Promise<void> | void;
}

export async function startTripwire(opts: TripwireOptions): Promise<Tripwire> {
  const [targetHost, targetPort] = splitHostPort(opts.target);
  const sockets = new Set<Socket>();
  let counted = 0;
  let done = false;
  let resolveTripped!: () => void;
  const tripped = new Promise<void>((r) => {
    resolveTripped = r;
  });
  const server = createServer((client) => {
    if (done) {
      client.destroy();
      return;
    }
    const upstream = createConnection({ host: targetHost, port: targetPort });
    sockets.add(client);
    sockets.add(upstream);
    const forget = (s: Socket) => () => sockets.delete(s);
    client.on('close', forget(client));
    upstream.on('close', forget(upstream));
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    const relay = (from: Socket, to: Socket, dir: 'up' | 'down') => {
      from.on('data', (chunk: Buffer) => {
        if (done) return;
        if (dir === opts.direction) {
          counted += chunk.length;
          if (counted >= opts.afterBytes) {
            void trip();
            return;
          }
        }
        to.write(chunk);
      });
      from.on('end', () => to.end());
    };
    relay(client, upstream, 'up');
    relay(upstream, client, 'down');
  });
  const trip = async () => {
    if (done) return;
    done = true;
    server.close();
    try {
      await opts.onTrip?.();
    } finally {
      for (const s of sockets) s.destroy();
      sockets.clear();
      resolveTripped();
    }
  };
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('tripwire: no TCP address');
  return {
    host: `127.0.0.1:${addr.port}`,
    port: addr.port,
    tripped,
    get done() {
      return done;
    },
    async stop() {
      done = true;
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function splitHostPort(hostPort: string): [string, number] {
  const i = hostPort.lastIndexOf(':');
  return [hostPort.slice(0, i), Number(hostPort.slice(i + 1))];
}
