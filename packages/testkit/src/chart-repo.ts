import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cp, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { issueCert, makeCA } from './ca.ts';
import { spawnGuarded } from './proc.ts';
import { freePort, tmpDir } from './tmp.ts';

const run = promisify(execFile);

export const NGINX_BIN = '/usr/sbin/nginx';

/** A chart to serve: a chart folder or .tgz, optionally re-versioned (folders only) to fake a version history. */
export type ChartSource = string | { path: string; version?: string };

export interface StartChartRepoOptions {
  charts: ChartSource[];
  tls?: boolean;
  basicAuth?: { username: string; password: string };
}

export interface ServedChart {
  name: string;
  version: string;
  /** The archive on disk under the served root (tests may overwrite it to tamper). */
  file: string;
  /** Absolute URL of the archive. */
  url: string;
  /** sha256 hex, as written in index.yaml. */
  digest: string;
}

export interface ChartRepo {
  /** Repository URL (the folder holding index.yaml), no trailing slash: http(s)://127.0.0.1:PORT/charts. */
  url: string;
  /** PEM of the test CA that signed the server certificate (tls only). */
  caFile?: string;
  /** The folder nginx serves; index.yaml is at `<root>/charts/index.yaml`. */
  root: string;
  charts: ServedChart[];
  logFile: string;
  stop(): Promise<void>;
}

function field(chartYaml: string, key: string): string | undefined {
  const m = new RegExp(`^${key}:\\s*["']?([^"'\\s#]+)["']?\\s*(?:#.*)?$`, 'm').exec(chartYaml);
  return m?.[1];
}

async function probe(url: string, ca: Buffer | undefined): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = (url.startsWith('https:') ? httpsRequest : httpRequest)(
      url,
      { method: 'GET', timeout: 2000, ...(ca ? { ca } : {}) },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** Pack one chart with GNU tar (an independent packer), deterministic enough for tests. */
async function pack(
  src: ChartSource,
  stage: string,
  outDir: string,
): Promise<{ name: string; version: string; file: string }> {
  const path = typeof src === 'string' ? src : src.path;
  const wantVersion = typeof src === 'string' ? undefined : src.version;
  const st = await stat(path);
  if (st.isFile()) {
    if (wantVersion) throw new Error(`startChartRepo: cannot re-version a .tgz (${path})`);
    const { stdout } = await run(
      'tar',
      ['-xzOf', path, '--wildcards', '--no-wildcards-match-slash', '*/Chart.yaml'],
      {
        maxBuffer: 4 * 1024 * 1024,
      },
    );
    const name = field(stdout, 'name');
    const version = field(stdout, 'version');
    if (!name || !version) throw new Error(`startChartRepo: no name/version in ${path}`);
    const file = join(outDir, `${name}-${version}.tgz`);
    await cp(path, file);
    return { name, version, file };
  }
  let chartYaml = await readFile(join(path, 'Chart.yaml'), 'utf8');
  const name = field(chartYaml, 'name');
  if (!name) throw new Error(`startChartRepo: no name in ${path}/Chart.yaml`);
  if (wantVersion) chartYaml = chartYaml.replace(/^version:.*$/m, `version: ${wantVersion}`);
  const version = field(chartYaml, 'version');
  if (!version) throw new Error(`startChartRepo: no version in ${path}/Chart.yaml`);
  const dir = join(stage, `${name}-${version}`);
  await mkdir(dir, { recursive: true });
  await cp(path, join(dir, name), { recursive: true });
  await writeFile(join(dir, name, 'Chart.yaml'), chartYaml);
  const file = join(outDir, `${name}-${version}.tgz`);
  await run('tar', [
    '--sort=name',
    '--owner=0',
    '--group=0',
    '--numeric-owner',
    '--mtime=@0',
    '--exclude=.helmignore',
    '-czf',
    file,
    '-C',
    dir,
    name,
  ]);
  return { name, version, file };
}

/**
 * A Helm HTTP chart repository on 127.0.0.1, served by the Debian `nginx` binary (no daemon, no
 * master process, every path in a temp dir): index.yaml (apiVersion v1, sha256 digests, relative
 * archive URLs) and the packed charts under /charts/. Optional TLS (certificate from a fresh test
 * CA for 127.0.0.1 and localhost) and HTTP basic auth (htpasswd file made by `htpasswd -bc`).
 */
export async function startChartRepo(opts: StartChartRepoOptions): Promise<ChartRepo> {
  const tmp = await tmpDir('lading-chart-repo-');
  const root = join(tmp.path, 'www');
  const chartsDir = join(root, 'charts');
  const stage = join(tmp.path, 'stage');
  const logFile = join(tmp.path, 'nginx.log');
  await mkdir(chartsDir, { recursive: true });
  await mkdir(stage);
  for (const t of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) await mkdir(join(tmp.path, t));
  let proc: ReturnType<typeof spawnGuarded> | undefined;
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await proc?.stop();
    await tmp.cleanup();
  };
  try {
    const packed = [];
    for (const c of opts.charts) packed.push(await pack(c, stage, chartsDir));

    let caFile: string | undefined;
    let tlsCfg = '';
    if (opts.tls) {
      const ca = await makeCA(join(tmp.path, 'pki'));
      const server = await issueCert(ca, 'server', { hosts: ['127.0.0.1', 'localhost'], usage: 'server' });
      caFile = ca.caFile;
      tlsCfg = `    ssl_certificate ${JSON.stringify(server.certFile)};\n    ssl_certificate_key ${JSON.stringify(server.keyFile)};\n`;
    }
    let authCfg = '';
    if (opts.basicAuth) {
      const file = join(tmp.path, 'htpasswd');
      await run('htpasswd', ['-bc', file, opts.basicAuth.username, opts.basicAuth.password]);
      authCfg = `    auth_basic "lading test charts";\n    auth_basic_user_file ${JSON.stringify(file)};\n`;
    }
    const ca = caFile ? await readFile(caFile) : undefined;

    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const scheme = opts.tls ? 'https' : 'http';
      const url = `${scheme}://127.0.0.1:${port}/charts`;
      const charts: ServedChart[] = [];
      let index = `apiVersion: v1\nentries:\n`;
      const byName = new Map<string, typeof packed>();
      for (const p of packed) byName.set(p.name, [...(byName.get(p.name) ?? []), p]);
      for (const [name, list] of [...byName.entries()].sort()) {
        index += `  ${name}:\n`;
        for (const p of list) {
          const digest = createHash('sha256')
            .update(await readFile(p.file))
            .digest('hex');
          const rel = basename(p.file);
          charts.push({ name, version: p.version, file: p.file, url: `${url}/${rel}`, digest });
          index +=
            `  - apiVersion: v2\n    name: ${name}\n    version: ${JSON.stringify(p.version)}\n` +
            `    created: "2024-01-01T00:00:00Z"\n    digest: ${digest}\n    urls:\n    - ${rel}\n`;
        }
      }
      index += `generated: "2024-01-01T00:00:00Z"\n`;
      await writeFile(join(chartsDir, 'index.yaml'), index);
      const conf =
        `daemon off;\nmaster_process off;\nworker_processes 1;\n` +
        `pid ${JSON.stringify(join(tmp.path, 'nginx.pid'))};\nerror_log ${JSON.stringify(logFile)} info;\n` +
        `events { worker_connections 256; }\n` +
        `http {\n  access_log ${JSON.stringify(join(tmp.path, 'access.log'))};\n` +
        `  client_body_temp_path ${JSON.stringify(join(tmp.path, 'client_body'))};\n` +
        `  proxy_temp_path ${JSON.stringify(join(tmp.path, 'proxy'))};\n` +
        `  fastcgi_temp_path ${JSON.stringify(join(tmp.path, 'fastcgi'))};\n` +
        `  uwsgi_temp_path ${JSON.stringify(join(tmp.path, 'uwsgi'))};\n` +
        `  scgi_temp_path ${JSON.stringify(join(tmp.path, 'scgi'))};\n` +
        `  types { application/x-yaml yaml; application/gzip tgz; }\n  default_type application/octet-stream;\n` +
        `  server {\n    listen 127.0.0.1:${port}${opts.tls ? ' ssl' : ''};\n    server_name localhost;\n` +
        `    root ${JSON.stringify(root)};\n` +
        tlsCfg +
        authCfg +
        `  }\n}\n`;
      const confFile = join(tmp.path, 'nginx.conf');
      await writeFile(confFile, conf);
      await writeFile(logFile, '');
      proc = spawnGuarded(NGINX_BIN, ['-e', logFile, '-p', tmp.path, '-c', confFile], logFile);
      const exited = proc.exited.then(() => 'exited' as const);
      const deadline = Date.now() + 15_000;
      let ok = false;
      let gone = false;
      while (Date.now() < deadline) {
        const r = await Promise.race([probe(`${url}/index.yaml`, ca).catch(() => 0), exited]);
        if (r === 'exited') {
          gone = true;
          break;
        }
        if (r === 200 || r === 401) {
          ok = true;
          break;
        }
        await new Promise((res) => setTimeout(res, 50));
      }
      if (ok) {
        const repo: ChartRepo = { url, root, charts, logFile, stop };
        if (caFile) repo.caFile = caFile;
        return repo;
      }
      const log = await readFile(logFile, 'utf8').catch(() => '');
      await proc.stop();
      proc = undefined;
      if (gone && /Address already in use/i.test(log) && attempt < 5) continue;
      throw new Error(
        `startChartRepo: nginx at ${url} did not come up; log:\n${log.split('\n').slice(-15).join('\n')}`,
      );
    }
  } catch (err) {
    await stop();
    throw err;
  }
}
