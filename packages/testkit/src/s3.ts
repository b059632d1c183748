/**
 * A NAMED STAND-IN for an S3-compatible object store, for tests only.
 *
 * Why not a real one: MinIO and Ceph RGW are not packaged in Debian 12 and Docker is not
 * available here. The npm candidates were checked and fall short of what Lading's S3 transport
 * needs: `s3rver` 3.7.1 (and its fork `@20minutes/s3rver` 5.0.0) answer ListMultipartUploads
 * (`GET /bucket?uploads`) with NotImplemented and have no ListParts or AbortMultipartUpload
 * route, so resuming an interrupted upload cannot be tested against them, and they ignore
 * `x-amz-checksum-sha256`; `fauxqs` 2.4.1 lists ListMultipartUploads and ListParts as
 * unsupported. So this file implements the S3 REST API subset that Lading uses, following the
 * S3 API reference, on node:http bound to 127.0.0.1, path-style only:
 *
 *   PutObject, GetObject (Range, If-Match), HeadObject, DeleteObject, HeadBucket, ListObjectsV2,
 *   CreateMultipartUpload, UploadPart, CompleteMultipartUpload, AbortMultipartUpload,
 *   ListMultipartUploads, ListParts (both paginated: max-uploads with key/upload-id markers,
 *   max-parts with part-number-marker); user metadata `x-amz-meta-*`.
 *
 * Integrity is checked as S3 does: `Content-MD5` and `x-amz-checksum-sha256` on PutObject and
 * UploadPart (mismatch → 400 BadDigest), a signed `x-amz-content-sha256` payload hash (mismatch →
 * 400 XAmzContentSHA256Mismatch), and the part list of CompleteMultipartUpload (ETags and
 * checksums must match the stored parts, parts but the last must be at least `minPartSize`).
 * Requests are authenticated with AWS Signature Version 4 (header form): an unknown access key
 * gives 403 InvalidAccessKeyId, a wrong secret 403 SignatureDoesNotMatch, a request time more than
 * 15 minutes off the server's clock (`clockSkewMs`) 403 RequestTimeTooSkewed. `aws-chunked` bodies
 * (streaming checksums in trailers) are refused with 501 NotImplemented, as several
 * S3-compatible stores do; Lading's client does not send them.
 *
 * Objects live under `dataDir/<bucket>/` (file name: the URI-encoded key), so a test can corrupt
 * one on disk (`objectFile(bucket, key)`); metadata is kept in memory for the server's lifetime.
 * Every request is recorded in `requests` so tests can count operations.
 */
import { createHash, createHmac, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { tmpDir } from './tmp.ts';

export interface StartS3ServerOptions {
  accessKeyId?: string;
  secretAccessKey?: string;
  region?: string;
  /** Buckets that exist from the start. */
  buckets: string[];
  /** Minimum size of every part but the last in CompleteMultipartUpload (S3: 5 MiB). */
  minPartSize?: number;
  /**
   * How far this server's clock is off (ms, default 0). As S3 does, a request whose x-amz-date is
   * more than 15 minutes from the server's time gets 403 RequestTimeTooSkewed, and every answer's
   * Date header tells the server's time (what SDKs correct their clock from).
   */
  clockSkewMs?: number;
  /** Most entries a ListMultipartUploads or ListParts page holds (S3: 1000), to test paging. */
  listPageSize?: number;
}

export interface S3RequestRecord {
  /** S3 operation name, e.g. `UploadPart`, `GetObject`. */
  op: string;
  method: string;
  bucket?: string;
  key?: string;
  partNumber?: number;
  range?: string;
  status: number;
  /** S3 error code when the request failed. */
  error?: string;
  /** Integrity headers the request carried (`content-md5`, `x-amz-checksum-sha256`). */
  integrity: string[];
}

export interface S3Server {
  /** 'http://127.0.0.1:PORT' */
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  dataDir: string;
  /** Every request answered so far, oldest first. */
  requests: S3RequestRecord[];
  /** How many requests of an operation were answered (optionally only successful ones). */
  count(op: string, opts?: { ok?: boolean }): number;
  /** The file that holds an object's bytes (to corrupt it in a test). */
  objectFile(bucket: string, key: string): string;
  /** Stored metadata of an object, or undefined. */
  objectInfo(bucket: string, key: string): StoredObject | undefined;
  /** Multipart uploads not yet completed or aborted. */
  pendingUploads(bucket: string): Array<{ key: string; uploadId: string; parts: number[] }>;
  stop(): Promise<void>;
}

export interface StoredObject {
  size: number;
  etag: string;
  lastModified: Date;
  contentType: string;
  metadata: Record<string, string>;
  checksumSha256?: string;
}

interface StoredPart {
  size: number;
  etag: string;
  md5: Buffer;
  sha256: Buffer;
  lastModified: Date;
  file: string;
}

interface Upload {
  uploadId: string;
  bucket: string;
  key: string;
  initiated: Date;
  contentType: string;
  metadata: Record<string, string>;
  checksumAlgorithm?: 'SHA256';
  parts: Map<number, StoredPart>;
  dir: string;
}

class S3Fail extends Error {
  readonly status: number;
  readonly s3Code: string;
  readonly extra: Record<string, string>;
  constructor(status: number, s3Code: string, message: string, extra: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.s3Code = s3Code;
    this.extra = extra;
  }
}

const NS = 'http://s3.amazonaws.com/doc/2006-03-01/';

function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function el(name: string, value: string | number | boolean): string {
  return `<${name}>${xmlEscape(String(value))}</${name}>`;
}

/** RFC 3986 escaping as SigV4 wants it. */
function escapeUri(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function sha256hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function hmac(key: Buffer | string, data: string): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

function parseQuery(raw: string): Array<[string, string]> {
  if (!raw) return [];
  return raw
    .split('&')
    .filter((p) => p.length > 0)
    .map((p) => {
      const i = p.indexOf('=');
      const k = i < 0 ? p : p.slice(0, i);
      const v = i < 0 ? '' : p.slice(i + 1);
      return [decodeURIComponent(k.replace(/\+/g, '%20')), decodeURIComponent(v.replace(/\+/g, '%20'))];
    });
}

function metadataFrom(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (k.startsWith('x-amz-meta-') && v !== undefined) out[k.slice('x-amz-meta-'.length)] = String(v);
  }
  return out;
}

function opName(method: string, key: string | undefined, q: Map<string, string>): string {
  if (key === undefined) {
    if (method === 'GET' && q.has('uploads')) return 'ListMultipartUploads';
    if (method === 'GET') return q.get('list-type') === '2' ? 'ListObjectsV2' : 'ListObjects';
    if (method === 'HEAD') return 'HeadBucket';
    if (method === 'PUT') return 'CreateBucket';
    return `${method} bucket`;
  }
  if (method === 'POST' && q.has('uploads')) return 'CreateMultipartUpload';
  if (method === 'POST' && q.has('uploadId')) return 'CompleteMultipartUpload';
  if (method === 'PUT' && q.has('uploadId')) return 'UploadPart';
  if (method === 'GET' && q.has('uploadId')) return 'ListParts';
  if (method === 'DELETE' && q.has('uploadId')) return 'AbortMultipartUpload';
  if (method === 'PUT') return 'PutObject';
  if (method === 'GET') return 'GetObject';
  if (method === 'HEAD') return 'HeadObject';
  if (method === 'DELETE') return 'DeleteObject';
  return `${method} object`;
}

/** Start the stand-in S3 server on 127.0.0.1 with a fresh data directory. */
export async function startS3Server(opts: StartS3ServerOptions): Promise<S3Server> {
  const accessKeyId = opts.accessKeyId ?? 'LADINGTESTKEY';
  const secretAccessKey = opts.secretAccessKey ?? 'lading-test-secret';
  const region = opts.region ?? 'us-east-1';
  const minPartSize = opts.minPartSize ?? 5 * 1024 * 1024;
  const serverNow = () => Date.now() + (opts.clockSkewMs ?? 0);
  const pageCap = Math.min(opts.listPageSize ?? 1000, 1000);
  const tmp = await tmpDir('lading-s3-');
  const dataDir = tmp.path;
  const uploadsDir = join(dataDir, '.multipart');
  await mkdir(uploadsDir, { recursive: true });

  const buckets = new Map<string, Map<string, StoredObject>>();
  const uploads = new Map<string, Upload>();
  const requests: S3RequestRecord[] = [];

  async function createBucket(name: string): Promise<void> {
    if (!buckets.has(name)) {
      buckets.set(name, new Map());
      await mkdir(join(dataDir, name), { recursive: true });
    }
  }
  for (const b of opts.buckets) await createBucket(b);

  const objectFile = (bucket: string, key: string) => join(dataDir, bucket, encodeURIComponent(key));

  function authenticate(req: IncomingMessage, rawPath: string, rawQuery: string): void {
    const auth = header(req, 'authorization');
    if (!auth) throw new S3Fail(403, 'AccessDenied', 'Anonymous access is not allowed');
    const m =
      /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/s3\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(
        auth.trim(),
      );
    if (!m) throw new S3Fail(400, 'AuthorizationHeaderMalformed', 'The authorization header is malformed');
    const [, akid, date, scopeRegion, signedHeaders, signature] = m as unknown as string[];
    if (akid !== accessKeyId) {
      throw new S3Fail(
        403,
        'InvalidAccessKeyId',
        'The AWS Access Key Id you provided does not exist in our records.',
        {
          AWSAccessKeyId: akid ?? '',
        },
      );
    }
    const amzDate = header(req, 'x-amz-date') ?? '';
    const dm = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate);
    const requestTime = dm ? Date.UTC(+dm[1]!, +dm[2]! - 1, +dm[3]!, +dm[4]!, +dm[5]!, +dm[6]!) : Number.NaN;
    if (Number.isNaN(requestTime))
      throw new S3Fail(403, 'AccessDenied', 'AWS authentication requires a valid x-amz-date');
    const now = serverNow();
    if (Math.abs(requestTime - now) > 15 * 60 * 1000) {
      throw new S3Fail(
        403,
        'RequestTimeTooSkewed',
        'The difference between the request time and the current time is too large.',
        {
          RequestTime: amzDate,
          ServerTime: new Date(now).toISOString(),
          MaxAllowedSkewMilliseconds: '900000',
        },
      );
    }
    const payloadHash = header(req, 'x-amz-content-sha256');
    if (!payloadHash) throw new S3Fail(400, 'InvalidRequest', 'Missing required header x-amz-content-sha256');
    const names = (signedHeaders ?? '').split(';');
    const canonicalHeaders = names
      .map((n) => {
        const v = n === 'host' ? (header(req, 'host') ?? '') : (header(req, n) ?? '');
        return `${n}:${v
          .replace(/[\r\n]/g, ' ')
          .replace(/[ \t]+/g, ' ')
          .trim()}\n`;
      })
      .join('');
    const canonicalQuery = parseQuery(rawQuery)
      .map(([k, v]) => [escapeUri(k), escapeUri(v)] as const)
      .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
      .map(([k, v]) => `${k}=${v}`)
      .join('&');
    const canonicalRequest = [
      req.method,
      rawPath,
      canonicalQuery,
      canonicalHeaders,
      signedHeaders,
      payloadHash,
    ].join('\n');
    const scope = `${date}/${scopeRegion}/s3/aws4_request`;
    const stringToSign = `AWS4-HMAC-SHA256\n${amzDate}\n${scope}\n${sha256hex(canonicalRequest)}`;
    const kDate = hmac(`AWS4${secretAccessKey}`, date ?? '');
    const kSigning = hmac(hmac(hmac(kDate, scopeRegion ?? ''), 's3'), 'aws4_request');
    const expected = createHmac('sha256', kSigning).update(stringToSign).digest('hex');
    if (expected !== signature) {
      throw new S3Fail(
        403,
        'SignatureDoesNotMatch',
        'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
      );
    }
  }

  /** Receive a request body into `file` (tmp name, renamed by the caller), checking digests. */
  async function receiveBody(
    req: IncomingMessage,
    file: string,
  ): Promise<{ size: number; md5: Buffer; sha256: Buffer }> {
    if ((header(req, 'content-encoding') ?? '').includes('aws-chunked')) {
      throw new S3Fail(
        501,
        'NotImplemented',
        'aws-chunked (streaming) uploads are not supported by this store',
      );
    }
    const md5 = createHash('md5');
    const sha = createHash('sha256');
    let size = 0;
    const tap = async function* (src: AsyncIterable<Buffer>) {
      for await (const chunk of src) {
        md5.update(chunk);
        sha.update(chunk);
        size += chunk.length;
        yield chunk;
      }
    };
    await pipeline(req, tap, createWriteStream(file));
    const out = { size, md5: md5.digest(), sha256: sha.digest() };
    const declared = header(req, 'content-length');
    if (declared !== undefined && Number(declared) !== size) {
      throw new S3Fail(
        400,
        'IncompleteBody',
        'You did not provide the number of bytes specified by the Content-Length',
      );
    }
    const payloadHash = header(req, 'x-amz-content-sha256') ?? '';
    if (/^[0-9a-f]{64}$/.test(payloadHash) && payloadHash !== out.sha256.toString('hex')) {
      throw new S3Fail(
        400,
        'XAmzContentSHA256Mismatch',
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
      );
    }
    const contentMd5 = header(req, 'content-md5');
    if (contentMd5 !== undefined && contentMd5 !== out.md5.toString('base64')) {
      throw new S3Fail(400, 'BadDigest', 'The Content-MD5 you specified did not match what we received.');
    }
    const checksum = header(req, 'x-amz-checksum-sha256');
    if (checksum !== undefined && checksum !== out.sha256.toString('base64')) {
      throw new S3Fail(400, 'BadDigest', 'The SHA256 you specified did not match the calculated checksum.');
    }
    return out;
  }

  function sendXml(
    res: ServerResponse,
    status: number,
    body: string,
    headers: Record<string, string> = {},
  ): void {
    const data = Buffer.from(`<?xml version="1.0" encoding="UTF-8"?>\n${body}`);
    res.writeHead(status, { 'content-type': 'application/xml', 'content-length': data.length, ...headers });
    res.end(data);
  }

  function objectHeaders(o: StoredObject): Record<string, string> {
    const h: Record<string, string> = {
      etag: o.etag,
      'last-modified': o.lastModified.toUTCString(),
      'content-type': o.contentType,
      'accept-ranges': 'bytes',
    };
    for (const [k, v] of Object.entries(o.metadata)) h[`x-amz-meta-${k}`] = v;
    return h;
  }

  function getBucket(name: string): Map<string, StoredObject> {
    const b = buckets.get(name);
    if (!b)
      throw new S3Fail(404, 'NoSuchBucket', 'The specified bucket does not exist', { BucketName: name });
    return b;
  }

  function getUpload(bucket: string, key: string, uploadId: string): Upload {
    const u = uploads.get(uploadId);
    if (!u || u.bucket !== bucket || u.key !== key) {
      throw new S3Fail(404, 'NoSuchUpload', 'The specified multipart upload does not exist.', {
        UploadId: uploadId,
      });
    }
    return u;
  }

  async function handle(
    req: IncomingMessage,
    res: ServerResponse,
    rec: S3RequestRecord,
    bucket: string | undefined,
    key: string | undefined,
    q: Map<string, string>,
  ): Promise<void> {
    const method = req.method ?? 'GET';
    if (bucket === undefined) {
      // ListBuckets
      const list = [...buckets.keys()]
        .map((b) => `<Bucket>${el('Name', b)}${el('CreationDate', new Date(0).toISOString())}</Bucket>`)
        .join('');
      sendXml(
        res,
        200,
        `<ListAllMyBucketsResult xmlns="${NS}"><Buckets>${list}</Buckets></ListAllMyBucketsResult>`,
      );
      return;
    }
    if (key === undefined) {
      if (method === 'PUT') {
        await createBucket(bucket);
        res.writeHead(200, { location: `/${bucket}` }).end();
        return;
      }
      const objects = getBucket(bucket);
      if (method === 'HEAD') {
        res.writeHead(200).end();
        return;
      }
      if (method === 'GET' && q.has('uploads')) {
        // Sorted by key, then by initiation; a page ends after max-uploads (S3: at most 1000).
        const prefix = q.get('prefix') ?? '';
        const maxUploads = Math.min(Number(q.get('max-uploads') ?? 1000), pageCap);
        const keyMarker = q.get('key-marker') ?? '';
        const idMarker = q.get('upload-id-marker') ?? '';
        const all = [...uploads.values()]
          .filter((u) => u.bucket === bucket && u.key.startsWith(prefix))
          .sort((a, b) =>
            a.key < b.key ? -1 : a.key > b.key ? 1 : a.initiated.getTime() - b.initiated.getTime(),
          );
        let from = 0;
        if (keyMarker) {
          const after = idMarker ? all.findIndex((u) => u.key === keyMarker && u.uploadId === idMarker) : -1;
          from = after >= 0 ? after + 1 : all.findIndex((u) => u.key > keyMarker);
          if (from < 0) from = all.length;
        }
        const page = all.slice(from, from + maxUploads);
        const truncated = from + maxUploads < all.length;
        const last = page[page.length - 1];
        const list = page
          .map(
            (u) =>
              `<Upload>${el('Key', u.key)}${el('UploadId', u.uploadId)}${el('Initiated', u.initiated.toISOString())}` +
              `${el('StorageClass', 'STANDARD')}${u.checksumAlgorithm ? el('ChecksumAlgorithm', u.checksumAlgorithm) : ''}</Upload>`,
          )
          .join('');
        const next =
          truncated && last
            ? `${el('NextKeyMarker', last.key)}${el('NextUploadIdMarker', last.uploadId)}`
            : '';
        sendXml(
          res,
          200,
          `<ListMultipartUploadsResult xmlns="${NS}">${el('Bucket', bucket)}${el('KeyMarker', keyMarker)}` +
            `${el('UploadIdMarker', idMarker)}${next}${el('Prefix', prefix)}` +
            `${el('MaxUploads', maxUploads)}${el('IsTruncated', truncated)}${list}</ListMultipartUploadsResult>`,
        );
        return;
      }
      if (method === 'GET') {
        const prefix = q.get('prefix') ?? '';
        const maxKeys = Math.min(Number(q.get('max-keys') ?? 1000), 1000);
        const after = q.has('continuation-token')
          ? Buffer.from(q.get('continuation-token') ?? '', 'base64url').toString()
          : (q.get('start-after') ?? '');
        const keys = [...objects.keys()].filter((k) => k.startsWith(prefix) && k > after).sort();
        const page = keys.slice(0, maxKeys);
        const truncated = keys.length > page.length;
        const contents = page
          .map((k) => {
            const o = objects.get(k)!;
            return `<Contents>${el('Key', k)}${el('LastModified', o.lastModified.toISOString())}${el('ETag', o.etag)}${el('Size', o.size)}${el('StorageClass', 'STANDARD')}</Contents>`;
          })
          .join('');
        const next =
          truncated && page.length > 0
            ? el('NextContinuationToken', Buffer.from(page[page.length - 1]!).toString('base64url'))
            : '';
        sendXml(
          res,
          200,
          `<ListBucketResult xmlns="${NS}">${el('Name', bucket)}${el('Prefix', prefix)}${el('KeyCount', page.length)}` +
            `${el('MaxKeys', maxKeys)}${el('IsTruncated', truncated)}${next}${contents}</ListBucketResult>`,
        );
        return;
      }
      throw new S3Fail(405, 'MethodNotAllowed', 'The specified method is not allowed against this resource.');
    }

    const objects = getBucket(bucket);
    const uploadId = q.get('uploadId');

    if (method === 'POST' && q.has('uploads')) {
      const id = randomUUID().replace(/-/g, '');
      const dir = join(uploadsDir, id);
      await mkdir(dir);
      const algo = header(req, 'x-amz-checksum-algorithm');
      if (algo !== undefined && algo.toUpperCase() !== 'SHA256') {
        throw new S3Fail(501, 'NotImplemented', `checksum algorithm ${algo} is not supported by this store`);
      }
      const u: Upload = {
        uploadId: id,
        bucket,
        key,
        initiated: new Date(),
        contentType: header(req, 'content-type') ?? 'binary/octet-stream',
        metadata: metadataFrom(req),
        parts: new Map(),
        dir,
      };
      if (algo) u.checksumAlgorithm = 'SHA256';
      uploads.set(id, u);
      sendXml(
        res,
        200,
        `<InitiateMultipartUploadResult xmlns="${NS}">${el('Bucket', bucket)}${el('Key', key)}${el('UploadId', id)}</InitiateMultipartUploadResult>`,
        algo ? { 'x-amz-checksum-algorithm': 'SHA256' } : {},
      );
      return;
    }

    if (uploadId !== undefined) {
      const u = getUpload(bucket, key, uploadId);
      if (method === 'PUT') {
        const n = Number(q.get('partNumber'));
        if (!Number.isInteger(n) || n < 1 || n > 10000) {
          throw new S3Fail(
            400,
            'InvalidArgument',
            'Part number must be an integer between 1 and 10000, inclusive',
          );
        }
        rec.partNumber = n;
        if (u.checksumAlgorithm === 'SHA256' && header(req, 'x-amz-checksum-sha256') === undefined) {
          throw new S3Fail(
            400,
            'InvalidRequest',
            'The upload was created using a SHA256 checksum; the part has none.',
          );
        }
        const tmpFile = join(u.dir, `part-${n}.tmp-${randomUUID()}`);
        try {
          const got = await receiveBody(req, tmpFile);
          const file = join(u.dir, `part-${n}`);
          await rename(tmpFile, file);
          const etag = `"${got.md5.toString('hex')}"`;
          u.parts.set(n, {
            size: got.size,
            etag,
            md5: got.md5,
            sha256: got.sha256,
            lastModified: new Date(),
            file,
          });
          const h: Record<string, string> = { etag };
          if (u.checksumAlgorithm) h['x-amz-checksum-sha256'] = got.sha256.toString('base64');
          res.writeHead(200, h).end();
        } finally {
          await rm(tmpFile, { force: true });
        }
        return;
      }
      if (method === 'GET') {
        const maxParts = Math.min(Number(q.get('max-parts') ?? 1000), pageCap);
        const marker = Number(q.get('part-number-marker') ?? 0);
        const all = [...u.parts.keys()].filter((n) => n > marker).sort((a, b) => a - b);
        const page = all.slice(0, maxParts);
        const truncated = all.length > page.length;
        const parts = page
          .map((n) => {
            const p = u.parts.get(n)!;
            return (
              `<Part>${el('PartNumber', n)}${el('LastModified', p.lastModified.toISOString())}${el('ETag', p.etag)}${el('Size', p.size)}` +
              `${u.checksumAlgorithm ? el('ChecksumSHA256', p.sha256.toString('base64')) : ''}</Part>`
            );
          })
          .join('');
        sendXml(
          res,
          200,
          `<ListPartsResult xmlns="${NS}">${el('Bucket', bucket)}${el('Key', key)}${el('UploadId', uploadId)}` +
            `${el('PartNumberMarker', marker)}${truncated ? el('NextPartNumberMarker', page[page.length - 1]!) : ''}` +
            `${el('MaxParts', maxParts)}${el('IsTruncated', truncated)}${el('StorageClass', 'STANDARD')}` +
            `${u.checksumAlgorithm ? el('ChecksumAlgorithm', u.checksumAlgorithm) : ''}${parts}</ListPartsResult>`,
        );
        return;
      }
      if (method === 'DELETE') {
        uploads.delete(uploadId);
        await rm(u.dir, { recursive: true, force: true });
        res.writeHead(204).end();
        return;
      }
      if (method === 'POST') {
        let body = '';
        for await (const chunk of req) body += chunk;
        const listed = [...body.matchAll(/<Part>([\s\S]*?)<\/Part>/g)].map((m) => {
          const inner = m[1] ?? '';
          const get = (tag: string) => new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(inner)?.[1];
          return {
            n: Number(get('PartNumber')),
            etag: (get('ETag') ?? '').replace(/&quot;/g, '"'),
            sha: get('ChecksumSHA256'),
          };
        });
        if (listed.length === 0)
          throw new S3Fail(400, 'MalformedXML', 'The XML you provided was not well-formed');
        let prev = 0;
        const chosen: StoredPart[] = [];
        for (const [i, p] of listed.entries()) {
          if (p.n <= prev)
            throw new S3Fail(400, 'InvalidPartOrder', 'The list of parts was not in ascending order.');
          prev = p.n;
          const stored = u.parts.get(p.n);
          const etag = p.etag.startsWith('"') ? p.etag : `"${p.etag}"`;
          if (!stored || stored.etag !== etag) {
            throw new S3Fail(400, 'InvalidPart', 'One or more of the specified parts could not be found.', {
              PartNumber: String(p.n),
            });
          }
          if (u.checksumAlgorithm && p.sha !== stored.sha256.toString('base64')) {
            throw new S3Fail(
              400,
              'InvalidPart',
              `The checksum of part ${p.n} does not match the uploaded part.`,
            );
          }
          if (i < listed.length - 1 && stored.size < minPartSize) {
            throw new S3Fail(
              400,
              'EntityTooSmall',
              'Your proposed upload is smaller than the minimum allowed object size.',
            );
          }
          chosen.push(stored);
        }
        const target = objectFile(bucket, key);
        const tmpFile = `${target}.tmp-${randomUUID()}`;
        const out = createWriteStream(tmpFile);
        await pipeline(async function* () {
          for (const p of chosen) yield* createReadStream(p.file);
        }, out);
        await rename(tmpFile, target);
        const etag = `"${createHash('md5')
          .update(Buffer.concat(chosen.map((p) => p.md5)))
          .digest('hex')}-${chosen.length}"`;
        const obj: StoredObject = {
          size: chosen.reduce((s, p) => s + p.size, 0),
          etag,
          lastModified: new Date(),
          contentType: u.contentType,
          metadata: u.metadata,
        };
        if (u.checksumAlgorithm) {
          obj.checksumSha256 = `${createHash('sha256')
            .update(Buffer.concat(chosen.map((p) => p.sha256)))
            .digest('base64')}-${chosen.length}`;
        }
        objects.set(key, obj);
        uploads.delete(uploadId);
        await rm(u.dir, { recursive: true, force: true });
        sendXml(
          res,
          200,
          `<CompleteMultipartUploadResult xmlns="${NS}">${el('Location', `/${bucket}/${key}`)}${el('Bucket', bucket)}` +
            `${el('Key', key)}${el('ETag', etag)}${obj.checksumSha256 ? el('ChecksumSHA256', obj.checksumSha256) : ''}</CompleteMultipartUploadResult>`,
        );
        return;
      }
      throw new S3Fail(405, 'MethodNotAllowed', 'The specified method is not allowed against this resource.');
    }

    if (method === 'PUT') {
      const target = objectFile(bucket, key);
      const tmpFile = `${target}.tmp-${randomUUID()}`;
      try {
        const got = await receiveBody(req, tmpFile);
        await rename(tmpFile, target);
        const etag = `"${got.md5.toString('hex')}"`;
        const obj: StoredObject = {
          size: got.size,
          etag,
          lastModified: new Date(),
          contentType: header(req, 'content-type') ?? 'binary/octet-stream',
          metadata: metadataFrom(req),
        };
        const h: Record<string, string> = { etag };
        if (header(req, 'x-amz-checksum-sha256') !== undefined) {
          obj.checksumSha256 = got.sha256.toString('base64');
          h['x-amz-checksum-sha256'] = obj.checksumSha256;
        }
        objects.set(key, obj);
        res.writeHead(200, h).end();
      } finally {
        await rm(tmpFile, { force: true });
      }
      return;
    }

    if (method === 'DELETE') {
      objects.delete(key);
      await rm(objectFile(bucket, key), { force: true });
      res.writeHead(204).end();
      return;
    }

    if (method === 'GET' || method === 'HEAD') {
      const o = objects.get(key);
      if (!o) {
        if (method === 'HEAD') {
          res.writeHead(404).end();
          rec.error = 'NoSuchKey';
          return;
        }
        throw new S3Fail(404, 'NoSuchKey', 'The specified key does not exist.', { Key: key });
      }
      const ifMatch = header(req, 'if-match');
      if (ifMatch !== undefined && ifMatch !== '*' && ifMatch !== o.etag && `"${ifMatch}"` !== o.etag) {
        throw new S3Fail(
          412,
          'PreconditionFailed',
          'At least one of the pre-conditions you specified did not hold',
        );
      }
      const headers = objectHeaders(o);
      if (header(req, 'x-amz-checksum-mode') === 'ENABLED' && o.checksumSha256) {
        headers['x-amz-checksum-sha256'] = o.checksumSha256;
      }
      const range = header(req, 'range');
      let start = 0;
      let end = o.size - 1;
      let status = 200;
      if (range !== undefined) {
        rec.range = range;
        const m = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
        if (!m || (m[1] === '' && m[2] === '')) {
          // S3 ignores a malformed Range header and sends the whole object.
        } else {
          if (m[1] === '') {
            start = Math.max(0, o.size - Number(m[2]));
          } else {
            start = Number(m[1]);
            if (m[2] !== '') end = Math.min(end, Number(m[2]));
          }
          if (start >= o.size || start > end) {
            throw new S3Fail(416, 'InvalidRange', 'The requested range is not satisfiable', {
              ActualObjectSize: String(o.size),
            });
          }
          status = 206;
          headers['content-range'] = `bytes ${start}-${end}/${o.size}`;
        }
      }
      const length = o.size === 0 ? 0 : end - start + 1;
      res.writeHead(status, { ...headers, 'content-length': String(length) });
      if (method === 'HEAD' || length === 0) {
        res.end();
        return;
      }
      await pipeline(createReadStream(objectFile(bucket, key), { start, end }), res);
      return;
    }
    throw new S3Fail(405, 'MethodNotAllowed', 'The specified method is not allowed against this resource.');
  }

  const server: Server = createServer((req, res) => {
    const url = req.url ?? '/';
    const qi = url.indexOf('?');
    const rawPath = qi < 0 ? url : url.slice(0, qi);
    const rawQuery = qi < 0 ? '' : url.slice(qi + 1);
    const q = new Map(parseQuery(rawQuery));
    const segs = rawPath.split('/').slice(1);
    const bucket = segs[0] ? decodeURIComponent(segs[0]) : undefined;
    const keyRaw = segs.slice(1).join('/');
    const key = bucket !== undefined && keyRaw.length > 0 ? decodeURIComponent(keyRaw) : undefined;
    const method = req.method ?? 'GET';
    res.setHeader('date', new Date(serverNow()).toUTCString());
    const rec: S3RequestRecord = {
      op: opName(method, key, q),
      method,
      status: 0,
      integrity: ['content-md5', 'x-amz-checksum-sha256'].filter((h) => req.headers[h] !== undefined),
    };
    if (bucket !== undefined) rec.bucket = bucket;
    if (key !== undefined) rec.key = key;
    // Recorded when it arrives (status filled in when answered), so counts taken between two
    // client calls see every request the second call made.
    requests.push(rec);
    res.on('finish', () => {
      rec.status = res.statusCode;
    });
    const run = async () => {
      try {
        authenticate(req, rawPath, rawQuery);
        await handle(req, res, rec, bucket, key, q);
      } catch (err) {
        const f =
          err instanceof S3Fail
            ? err
            : new S3Fail(500, 'InternalError', `We encountered an internal error: ${(err as Error).message}`);
        rec.error = f.s3Code;
        if (!req.complete) req.resume();
        if (res.headersSent) {
          res.destroy();
          return;
        }
        if (method === 'HEAD') {
          res.writeHead(f.status, { 'x-amz-error-code': f.s3Code }).end();
          return;
        }
        const extra = Object.entries(f.extra)
          .map(([k, v]) => el(k, v))
          .join('');
        const names = `${bucket !== undefined ? el('BucketName', bucket) : ''}${key !== undefined ? el('Key', key) : ''}`;
        sendXml(
          res,
          f.status,
          `<Error>${el('Code', f.s3Code)}${el('Message', f.message)}${f.extra.BucketName ? '' : names}${extra}${el('RequestId', randomUUID())}</Error>`,
        );
      } finally {
        rec.status = res.statusCode;
      }
    };
    void run();
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    accessKeyId,
    secretAccessKey,
    region,
    dataDir,
    requests,
    count(op, o = {}) {
      return requests.filter((r) => r.op === op && (o.ok === undefined || o.ok === r.status < 300)).length;
    },
    objectFile,
    objectInfo(bucket, key) {
      return buckets.get(bucket)?.get(key);
    },
    pendingUploads(bucket) {
      return [...uploads.values()]
        .filter((u) => u.bucket === bucket)
        .map((u) => ({ key: u.key, uploadId: u.uploadId, parts: [...u.parts.keys()].sort((a, b) => a - b) }));
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await tmp.cleanup();
    },
  };
}
