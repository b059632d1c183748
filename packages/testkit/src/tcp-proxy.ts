import { createServer, type Server, Socket } from 'node:net';

/**
 * A TCP proxy on 127.0.0.1 (port 0) in front of `target`, counting the bytes it forwards each way,
 * so a test can act on what went over the wire (interrupt a client once N bytes were sent) instead
 * of sleeping or polling. `bytesPerSecond` slows the answers to the client (a pull that takes
 * seconds).
 */
export interface TcpProxy {
  /** '127.0.0.1:PORT' */
  host: string;
  /** Bytes forwarded from clients to the target, and from the target to clients. */
  readonly sent: number;
  readonly received: number;
  /** Resolves once `n` bytes went from clients to the target. */
  whenSent(n: number): Promise<void>;
  /** Resolves once `n` bytes went from the target to clients. */
  whenReceived(n: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startTcpProxy(
  target: string,
  opts: { bytesPerSecond?: number } = {},
): Promise<TcpProxy> {
  const [host, port] = [
    target.slice(0, target.lastIndexOf(':')),
    Number(target.slice(target.lastIndexOf(':') + 1)),
  ];
  const count = { sent: 0, received: 0 };
  const waiting: { dir: 'sent' | 'received'; n: number; resolve: () => void }[] = [];
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
    client.on('data', (chunk: Buffer) => {
      count.sent += chunk.length;
      settle();
      if (!upstream.write(chunk)) client.pause();
    });
    upstream.on('drain', () => client.resume());
    upstream.on('data', (chunk: Buffer) => {
      count.received += chunk.length;
      settle();
      if (opts.bytesPerSecond) {
        upstream.pause();
        client.write(chunk, () =>
          setTimeout(() => upstream.resume(), (chunk.length / opts.bytesPerSecond!) * 1000),
        );
      } else if (!client.write(chunk)) upstream.pause();
    });
    client.on('drain', () => {
      if (!opts.bytesPerSecond) upstream.resume();
    });
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
    const close = () => {
      upstream.destroy();
      client.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    upstream.on('error', close);
    client.on('error', close);
    client.on('close', close);
    upstream.on('close', close);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const addr = server.address() as { port: number };
  const when = (dir: 'sent' | 'received', n: number) =>
    count[dir] >= n ? Promise.resolve() : new Promise<void>((resolve) => waiting.push({ dir, n, resolve }));
  return {
    host: `127.0.0.1:${addr.port}`,
    get sent() {
      return count.sent;
    },
    get received() {
      return count.received;
    },
    whenSent: (n) => when('sent', n),
    whenReceived: (n) => when('received', n),
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
