import { createServer, type Server, Socket } from 'node:net';

/**
 * The one TCP relay of the testkit: a proxy on 127.0.0.1 (port 0) in front of `target` that counts
 * the bytes it forwards each way, so a test acts on what went over the wire (interrupt a client
 * once N bytes were sent, kill a server mid-transfer: `startTripwire`) instead of sleeping or
 * polling. `bytesPerSecond` slows the answers to the client (a pull that takes seconds),
 * `upBytesPerSecond` what clients send (an upload that takes seconds); `hold` drops chunks instead
 * of forwarding them.
 */
export interface TcpProxy {
  /** '127.0.0.1:PORT' */
  host: string;
  port: number;
  /** Bytes from clients to the target ('up'), and from the target to clients ('down'). */
  readonly sent: number;
  readonly received: number;
  /** Resolves once `n` bytes went from clients to the target. */
  whenSent(n: number): Promise<void>;
  /** Resolves once `n` bytes went from the target to clients. */
  whenReceived(n: number): Promise<void>;
  /** Stop accepting connections (those open go on). */
  refuse(): void;
  /** Drop every connection and stop listening. */
  stop(): Promise<void>;
}

export interface TcpProxyOptions {
  /** Slow the target's answers to this rate. */
  bytesPerSecond?: number;
  /** Slow what clients send to the target to this rate. */
  upBytesPerSecond?: number;
  /** Called with each chunk's direction and that direction's total including it; true drops it. */
  hold?: (direction: 'up' | 'down', total: number) => boolean;
}

export async function startTcpProxy(target: string, opts: TcpProxyOptions = {}): Promise<TcpProxy> {
  const i = target.lastIndexOf(':');
  const [host, port] = [target.slice(0, i), Number(target.slice(i + 1))];
  const count = { up: 0, down: 0 };
  const waiting: { dir: 'up' | 'down'; n: number; resolve: () => void }[] = [];
  const settle = () => {
    for (const w of [...waiting]) {
      if (count[w.dir] >= w.n) {
        waiting.splice(waiting.indexOf(w), 1);
        w.resolve();
      }
    }
  };
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = new Socket();
    sockets.add(client).add(upstream);
    upstream.connect(port, host);
    const relay = (from: Socket, to: Socket, dir: 'up' | 'down') => {
      const slow = dir === 'down' ? opts.bytesPerSecond : opts.upBytesPerSecond;
      from.on('data', (chunk: Buffer) => {
        count[dir] += chunk.length;
        const held = opts.hold?.(dir, count[dir]) ?? false;
        settle();
        if (held) return;
        if (slow) {
          from.pause();
          to.write(chunk, () => setTimeout(() => from.resume(), (chunk.length / slow) * 1000));
        } else if (!to.write(chunk)) from.pause();
      });
      if (!slow) to.on('drain', () => from.resume());
      from.on('end', () => to.end());
    };
    relay(client, upstream, 'up');
    relay(upstream, client, 'down');
    const close = () => {
      upstream.destroy();
      client.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    for (const s of [client, upstream]) {
      s.on('error', close);
      s.on('close', close);
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('startTcpProxy: no TCP address');
  const when = (dir: 'up' | 'down', n: number) =>
    count[dir] >= n ? Promise.resolve() : new Promise<void>((resolve) => waiting.push({ dir, n, resolve }));
  let closed: Promise<void> | undefined;
  const refuse = () => {
    closed ??= new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return {
    host: `127.0.0.1:${addr.port}`,
    port: addr.port,
    get sent() {
      return count.up;
    },
    get received() {
      return count.down;
    },
    whenSent: (n) => when('up', n),
    whenReceived: (n) => when('down', n),
    refuse,
    async stop() {
      refuse();
      for (const s of sockets) s.destroy();
      sockets.clear();
      await closed;
    },
  };
}
