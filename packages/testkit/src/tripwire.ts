import { startTcpProxy } from './tcp-proxy.ts';

/**
 * A TCP relay on 127.0.0.1 in front of a real server that, once `afterBytes` bytes have gone
 * through it in one direction, runs `onTrip` (a test stops the real server there: the registry
 * or S3 server dies mid-transfer), then drops every connection and stops listening, so a retry
 * finds nothing (connection refused). Deterministic where "kill it after a while" is a race.
 * Built on testkit's one TCP relay (`startTcpProxy`); from the chunk that reaches `afterBytes`
 * on, nothing more is relayed either way.
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
  let done = false;
  const relay = await startTcpProxy(opts.target, {
    hold: (dir, total) => {
      if (!done && dir === opts.direction && total >= opts.afterBytes) done = true;
      return done;
    },
  });
  const reached =
    opts.direction === 'up' ? relay.whenSent(opts.afterBytes) : relay.whenReceived(opts.afterBytes);
  const tripped = reached.then(async () => {
    relay.refuse();
    try {
      await opts.onTrip?.();
    } finally {
      await relay.stop();
    }
  });
  return {
    host: relay.host,
    port: relay.port,
    tripped,
    get done() {
      return done;
    },
    async stop() {
      done = true;
      await relay.stop();
    },
  };
}
