/**
 * A fault-injecting HTTP reverse proxy on 127.0.0.1 in front of a registry. Each request, with
 * probability `rate`, gets one fault (seeded, so a run can be repeated):
 *   5xx   — answered 500/502/503 by the proxy, never forwarded
 *   reset — the connection is reset (TCP RST) halfway: during the request body when there is one,
 *           else after half of the first response chunk
 *   stall — the request waits `stallMs` before it is forwarded, and the response waits again
 *   slow  — request and response bodies crawl at `slowBytesPerSec`
 */
import { Agent, createServer, type IncomingMessage, request, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Transform } from 'node:stream';

export type FaultKind = '5xx' | 'reset' | 'stall' | 'slow';
export const FAULT_KINDS: FaultKind[] = ['5xx', 'reset', 'stall', 'slow'];

export interface FaultProxy {
  host: string;
  url: string;
  stats: Record<FaultKind | 'requests', number>;
  /** Every injected fault: which request got which fault, oldest first. */
  events: { kind: FaultKind; method: string; path: string }[];
  stop(): Promise<void>;
}

export interface FaultProxyOptions {
  /** 'http://127.0.0.1:PORT' */
  upstream: string;
  rate: number;
  seed: number;
  kinds?: FaultKind[];
  stallMs?: number;
  slowBytesPerSec?: number;
}

/** mulberry32: a small seeded PRNG. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function throttle(bytesPerSec: number): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      setTimeout(() => cb(null, chunk), (chunk.length / bytesPerSec) * 1000);
    },
  });
}

function reset(sock: Socket): void {
  if (typeof sock.resetAndDestroy === 'function') sock.resetAndDestroy();
  else sock.destroy();
}

export async function startFaultProxy(opts: FaultProxyOptions): Promise<FaultProxy> {
  const up = new URL(opts.upstream);
  const rnd = prng(opts.seed);
  const kinds = opts.kinds ?? FAULT_KINDS;
  const stallMs = opts.stallMs ?? 3000;
  const slow = opts.slowBytesPerSec ?? 2 * 1024 * 1024;
  const stats: FaultProxy['stats'] = { requests: 0, '5xx': 0, reset: 0, stall: 0, slow: 0 };
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const sockets = new Set<Socket>();
  const events: FaultProxy['events'] = [];

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    stats.requests++;
    const fault = rnd() < opts.rate ? kinds[Math.floor(rnd() * kinds.length)] : undefined;
    if (fault) {
      stats[fault]++;
      events.push({ kind: fault, method: req.method ?? '?', path: (req.url ?? '').replace(/\?.*$/, '') });
    }
    if (fault === '5xx') {
      const code = [500, 502, 503][Math.floor(rnd() * 3)]!;
      req.resume();
      req.on('end', () => {
        res.writeHead(code, { 'content-type': 'text/plain', connection: 'close' });
        res.end(`fault proxy: injected ${code}\n`);
      });
      return;
    }
    const hasBody =
      Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
    const upReq = request(
      {
        host: up.hostname,
        port: up.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
        agent,
      },
      (upRes) => {
        const send = (): void => {
          res.writeHead(upRes.statusCode ?? 502, upRes.headers);
          if (fault === 'reset' && !hasBody) {
            let done = false;
            upRes.on('data', (c: Buffer) => {
              if (done) return;
              done = true;
              res.write(c.subarray(0, Math.floor(c.length / 2)));
              setImmediate(() => {
                reset(req.socket);
                upRes.destroy();
              });
            });
            upRes.on('end', () => {
              if (!done) reset(req.socket);
            });
            return;
          }
          if (fault === 'slow') upRes.pipe(throttle(slow)).pipe(res);
          else upRes.pipe(res);
        };
        if (fault === 'stall') setTimeout(send, stallMs);
        else send();
      },
    );
    upReq.on('error', () => reset(req.socket));
    res.on('close', () => {
      if (!res.writableFinished) upReq.destroy();
    });
    const forward = (): void => {
      if (fault === 'reset' && hasBody) {
        let seen = 0;
        req.on('data', (c: Buffer) => {
          seen += c.length;
          if (seen > 0) {
            upReq.destroy();
            reset(req.socket);
          }
        });
        return;
      }
      if (fault === 'slow') req.pipe(throttle(slow)).pipe(upReq);
      else req.pipe(upReq);
    };
    if (fault === 'stall') setTimeout(forward, stallMs);
    else forward();
  };

  const server = createServer(handle);
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  if (!addr || typeof addr === 'string') throw new Error('fault proxy: no address');
  const host = `127.0.0.1:${addr.port}`;
  return {
    host,
    url: `http://${host}`,
    stats,
    events,
    stop: async () => {
      for (const s of sockets) s.destroy();
      agent.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
