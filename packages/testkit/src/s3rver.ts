/**
 * s3rver (npm), a third party's S3 server, on 127.0.0.1: publish, fetch, verify and push from
 * `s3://` run against it too, so Lading's S3 client is not tested only against testkit's own
 * stand-in (`./s3.ts`). It lacks ListMultipartUploads, ListParts and checksums, so resuming an
 * upload is tested against the stand-in only. Credentials: s3rver's fixed `S3RVER` / `S3RVER`;
 * signatures are checked.
 */
import { createRequire } from 'node:module';
import { tmpDir } from './tmp.ts';

export interface S3rverServer {
  /** 'http://127.0.0.1:PORT' */
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  dataDir: string;
  stop(): Promise<void>;
}

interface S3rverInstance {
  run(): Promise<{ address: string; port: number }>;
  close(): Promise<void>;
}
type S3rverClass = new (opts: Record<string, unknown>) => S3rverInstance;

/** Start s3rver on a free loopback port with `buckets` created and a fresh data directory. */
export async function startS3rver(opts: { buckets: string[] }): Promise<S3rverServer> {
  // s3rver is CommonJS without types.
  const S3rver = createRequire(import.meta.url)('s3rver') as S3rverClass;
  const tmp = await tmpDir('lading-s3rver-');
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory: tmp.path,
    vhostBuckets: false,
    configureBuckets: opts.buckets.map((name) => ({ name })),
  });
  let addr: { port: number };
  try {
    addr = await server.run();
  } catch (err) {
    await tmp.cleanup();
    throw err;
  }
  return {
    endpoint: `http://127.0.0.1:${addr.port}`,
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    region: 'us-east-1',
    dataDir: tmp.path,
    async stop() {
      await server.close();
      await tmp.cleanup();
    },
  };
}
