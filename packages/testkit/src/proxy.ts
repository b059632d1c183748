import { readFile, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { spawnGuarded } from './proc.ts';
import { freePort, tmpDir } from './tmp.ts';

export const TINYPROXY_BIN = '/usr/bin/tinyproxy';

export interface StartProxyOptions {
  /** Require Proxy-Authorization (Basic) with these credentials (tinyproxy's BasicAuth). */
  basicAuth?: { username: string; password: string };
}

export interface ProxyServer {
  /** `http://127.0.0.1:PORT` (without credentials). */
  url: string;
  /** `http://user:password@127.0.0.1:PORT` when basicAuth was given, else `url`. */
  urlWithCredentials: string;
  port: number;
  logFile: string;
  /**
   * The requests the proxy handled so far, as tinyproxy logs them: `GET http://host:port/path`
   * for forwarded plain HTTP, `CONNECT host:port` for tunnels.
   */
  requests(): Promise<string[]>;
  stop(): Promise<void>;
}

/**
 * Starts Debian's tinyproxy as a forward proxy on a free 127.0.0.1 port (foreground, own config,
 * logging every request at level Info). Resolves once it accepts connections.
 */
export async function startProxy(opts: StartProxyOptions = {}): Promise<ProxyServer> {
  const root = await tmpDir('lading-proxy-');
  const logFile = join(root.path, 'tinyproxy.log');
  const configFile = join(root.path, 'tinyproxy.conf');
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const lines = [
      `Port ${port}`,
      'Listen 127.0.0.1',
      'Timeout 120',
      `LogFile "${logFile}"`,
      'LogLevel Info',
      'MaxClients 100',
      'Allow 127.0.0.1',
      'DisableViaHeader Yes',
      // No ConnectPort line: CONNECT is allowed to any port (test registries use high ports).
    ];
    if (opts.basicAuth) lines.push(`BasicAuth ${opts.basicAuth.username} ${opts.basicAuth.password}`);
    await writeFile(configFile, `${lines.join('\n')}\n`);
    await writeFile(logFile, '');
    const proc = spawnGuarded(TINYPROXY_BIN, ['-d', '-c', configFile], join(root.path, 'stdout.log'));
    let up = false;
    let gone = false;
    void proc.exited.then(() => {
      gone = true;
    });
    for (let i = 0; i < 200 && !gone && !up; i++) {
      up = await canConnect(port);
      if (!up) await new Promise((r) => setTimeout(r, 25));
    }
    if (!up) {
      await proc.stop();
      if (attempt < 3) continue;
      const out = await readFile(join(root.path, 'stdout.log'), 'utf8').catch(() => '');
      await root.cleanup();
      throw new Error(`startProxy: tinyproxy did not start on port ${port}\n${out}`);
    }
    const url = `http://127.0.0.1:${port}`;
    const a = opts.basicAuth;
    const urlWithCredentials = a
      ? `http://${encodeURIComponent(a.username)}:${encodeURIComponent(a.password)}@127.0.0.1:${port}`
      : url;
    let stopped = false;
    return {
      url,
      urlWithCredentials,
      port,
      logFile,
      async requests() {
        const text = await readFile(logFile, 'utf8').catch(() => '');
        const out: string[] = [];
        for (const m of text.matchAll(/Request \(file descriptor \d+\): (\S+) (\S+) HTTP\/1\.[01]/g)) {
          out.push(`${m[1]} ${m[2]}`);
        }
        return out;
      },
      async stop() {
        if (stopped) return;
        stopped = true;
        await proc.stop();
        await root.cleanup();
      },
    };
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
