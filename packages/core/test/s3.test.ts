import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { UploadPartCommand } from '@aws-sdk/client-s3';
import { tmpDir } from '@lading/testkit';
import { type S3Server, startS3Server } from '@lading/testkit/s3';
import {
  AbortedError,
  ExitCode,
  NotFoundError,
  RemoteError,
  VerificationError,
} from '../src/errors/index.ts';
import {
  createS3Client,
  fetchObject,
  headObject,
  META_SHA256,
  openS3Object,
  publishFiles,
  S3ChecksumError,
  S3Error,
  S3NotFoundError,
  toS3Error,
} from '../src/s3/index.ts';

const MiB = 1024 * 1024;
const PART = 5 * MiB;
const BUCKET = 'drop-zone';

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path)) h.update(c as Buffer);
  return h.digest('hex');
}

async function streamSha(s: AsyncIterable<Uint8Array>): Promise<{ hex: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const c of s) {
    h.update(c);
    size += c.length;
  }
  return { hex: h.digest('hex'), size };
}

describe('s3 transport (against the loopback S3 stand-in)', function () {
  this.timeout(120_000);
  let server: S3Server;
  let dir: { path: string; cleanup(): Promise<void> };
  let bundle: string;
  let bundleSha: string;
  const size = 3 * PART + 123_457;

  const client = () =>
    createS3Client({
      endpoint: server.endpoint,
      region: server.region,
      credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    });

  before(async () => {
    server = await startS3Server({ buckets: [BUCKET] });
    dir = await tmpDir('lading-s3-test-');
    bundle = join(dir.path, 'shop-2.4.0.tar');
    await writeFile(bundle, randomBytes(size));
    bundleSha = await sha256File(bundle);
  });

  after(async () => {
    await server?.stop();
    await dir?.cleanup();
  });

  it('round-trips a multi-part file: parallel parts up, parallel ranged GETs down, sha256 equal', async () => {
    const c = await client();
    const before = server.requests.length;
    const sums = 'ab'.repeat(32);
    const [res] = await publishFiles([bundle], `s3://${BUCKET}/releases/`, {
      client: c,
      partSize: PART,
      concurrency: 3,
      metadata: { 'lading-sums-sha256': sums },
    });
    assert.ok(res);
    assert.equal(res.key, 'releases/shop-2.4.0.tar');
    assert.equal(res.parts, 4);
    assert.equal(res.uploadedParts, 4);
    assert.equal(res.reusedParts, 0);
    assert.equal(res.sha256, bundleSha);
    const mine = server.requests.slice(before);
    const parts = mine.filter((r) => r.op === 'UploadPart' && r.status === 200);
    assert.equal(parts.length, 4);
    for (const r of parts)
      assert.deepEqual(r.integrity, ['content-md5', 'x-amz-checksum-sha256'], 'every part is checked');
    // The store verified each part's SHA-256 again at Complete and keeps the composite checksum.
    assert.match(server.objectInfo(BUCKET, 'releases/shop-2.4.0.tar')?.checksumSha256 ?? '', /-4$/);
    assert.equal(mine.filter((r) => r.op === 'CompleteMultipartUpload' && r.status === 200).length, 1);
    assert.equal(await sha256File(server.objectFile(BUCKET, 'releases/shop-2.4.0.tar')), bundleSha);
    assert.deepEqual(server.pendingUploads(BUCKET), []);

    // Metadata on the object, as a client sees it.
    const info = await headObject(c, { bucket: BUCKET, key: 'releases/shop-2.4.0.tar' });
    assert.equal(info.size, size);
    assert.equal(info.metadata['lading-sums-sha256'], sums);
    assert.equal(info.metadata[META_SHA256], bundleSha);
    assert.match(info.etag, /-4"$/);

    const out = join(dir.path, 'fetched.tar');
    const seen: number[] = [];
    const fetchStart = server.requests.length;
    const got = await fetchObject(`s3://${BUCKET}/releases/shop-2.4.0.tar`, out, {
      client: c,
      partSize: 4 * MiB,
      concurrency: 3,
      onProgress: (p) => seen.push(p.bytesDone),
    });
    assert.equal(got.sha256, bundleSha);
    assert.equal(got.verifiedAgainst, 'metadata');
    assert.equal(await sha256File(out), bundleSha);
    assert.equal(seen.at(-1), size);
    const ranges = server.requests
      .slice(fetchStart)
      .filter((r) => r.op === 'GetObject')
      .map((r) => r.range)
      .sort();
    const expected = [];
    for (let s = 0; s < size; s += 4 * MiB) expected.push(`bytes=${s}-${Math.min(size, s + 4 * MiB) - 1}`);
    assert.deepEqual(ranges, expected.sort());
    assert.deepEqual(
      (await readdir(dir.path)).filter((n) => n.includes('.tmp-')),
      [],
      'no temporary file left behind',
    );
  });

  it('fetches ranges in parallel', async () => {
    const c = await client();
    const out = join(dir.path, 'parallel.tar');
    let inFlight = 0;
    let maxInFlight = 0;
    // Count GETs in flight at the server by wrapping the client's send.
    const send = c.send.bind(c);
    (c as unknown as { send: typeof send }).send = (async (...args: Parameters<typeof send>) => {
      const isGet = args[0].constructor.name === 'GetObjectCommand';
      if (isGet) maxInFlight = Math.max(maxInFlight, ++inFlight);
      try {
        return await send(...args);
      } finally {
        if (isGet) inFlight--;
      }
    }) as typeof send;
    await fetchObject(`s3://${BUCKET}/releases/shop-2.4.0.tar`, out, {
      client: c,
      partSize: MiB,
      concurrency: 4,
    });
    assert.equal(await sha256File(out), bundleSha);
    assert.ok(maxInFlight >= 2, `expected parallel GETs, saw at most ${maxInFlight}`);
    assert.ok(maxInFlight <= 4, `concurrency bound exceeded: ${maxInFlight}`);
  });

  it('resumes an interrupted publish, sending only the missing parts', async () => {
    const c = await client();
    const dest = `s3://${BUCKET}/resume/`;
    const ac = new AbortController();
    await assert.rejects(
      publishFiles([bundle], dest, {
        client: c,
        partSize: PART,
        concurrency: 1,
        signal: ac.signal,
        onProgress: (p) => {
          if (p.phase === 'uploading' && p.partsDone >= 2) ac.abort(new Error('interrupted by the test'));
        },
      }),
      (err: unknown) => err instanceof AbortedError,
    );
    const pending = server.pendingUploads(BUCKET).filter((u) => u.key === 'resume/shop-2.4.0.tar');
    assert.equal(pending.length, 1);
    assert.deepEqual(pending[0]!.parts, [1, 2]);

    const before = server.requests.length;
    const [res] = await publishFiles([bundle], dest, { client: c, partSize: PART, concurrency: 2 });
    assert.ok(res);
    assert.equal(res.resumedUploadId, pending[0]!.uploadId);
    assert.equal(res.reusedParts, 2);
    assert.equal(res.uploadedParts, 2);
    const mine = server.requests.slice(before);
    assert.equal(mine.filter((r) => r.op === 'ListMultipartUploads').length, 1);
    assert.ok(mine.some((r) => r.op === 'ListParts'));
    assert.deepEqual(
      mine
        .filter((r) => r.op === 'UploadPart')
        .map((r) => r.partNumber)
        .sort(),
      [3, 4],
    );
    assert.equal(mine.filter((r) => r.op === 'CreateMultipartUpload').length, 0);
    assert.equal(await sha256File(server.objectFile(BUCKET, 'resume/shop-2.4.0.tar')), bundleSha);
    assert.equal(server.pendingUploads(BUCKET).filter((u) => u.key === 'resume/shop-2.4.0.tar').length, 0);

    // Publishing the same file again sends nothing.
    const again = server.requests.length;
    const [skip] = await publishFiles([bundle], dest, { client: c, partSize: PART });
    assert.equal(skip?.skipped, true);
    assert.equal(
      server.requests.slice(again).filter((r) => r.op === 'UploadPart' || r.op === 'PutObject').length,
      0,
    );
  });

  it('resume pages through ListMultipartUploads and ListParts (one entry a page)', async () => {
    const paged = await startS3Server({ buckets: [BUCKET], listPageSize: 1 });
    const c = await createS3Client({
      endpoint: paged.endpoint,
      region: paged.region,
      credentials: { accessKeyId: paged.accessKeyId, secretAccessKey: paged.secretAccessKey },
    });
    try {
      const dest = `s3://${BUCKET}/paged/`;
      const key = 'paged/shop-2.4.0.tar';
      // Two unfinished uploads of the same key that do not match: one started earlier, one of
      // another key sharing the prefix.
      const sdk = await import('@aws-sdk/client-s3');
      await c.send(new sdk.CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }));
      await c.send(new sdk.CreateMultipartUploadCommand({ Bucket: BUCKET, Key: `${key}.other` }));
      const ac = new AbortController();
      await assert.rejects(
        publishFiles([bundle], dest, {
          client: c,
          partSize: PART,
          concurrency: 1,
          signal: ac.signal,
          onProgress: (p) => {
            if (p.phase === 'uploading' && p.partsDone >= 2) ac.abort(new Error('interrupted by the test'));
          },
        }),
        AbortedError,
      );
      const interrupted = paged.pendingUploads(BUCKET).find((u) => u.key === key && u.parts.length === 2)!;
      assert.ok(interrupted);
      const before = paged.requests.length;
      const [res] = await publishFiles([bundle], dest, { client: c, partSize: PART, concurrency: 2 });
      assert.equal(res?.resumedUploadId, interrupted.uploadId);
      assert.equal(res?.reusedParts, 2);
      const mine = paged.requests.slice(before);
      assert.equal(
        mine.filter((r) => r.op === 'ListMultipartUploads').length,
        3,
        'three uploads, one a page',
      );
      assert.ok(mine.filter((r) => r.op === 'ListParts').length >= 2, 'two parts, one a page');
      assert.equal(await sha256File(paged.objectFile(BUCKET, key)), bundleSha);
    } finally {
      c.destroy();
      await paged.stop();
    }
  });

  it('a store whose clock is an hour off: the SDK corrects from its Date header, the publish completes', async () => {
    const skewed = await startS3Server({ buckets: [BUCKET], clockSkewMs: 60 * 60 * 1000 });
    const c = await createS3Client({
      endpoint: skewed.endpoint,
      region: skewed.region,
      credentials: { accessKeyId: skewed.accessKeyId, secretAccessKey: skewed.secretAccessKey },
    });
    try {
      const small = join(dir.path, 'skew.tar');
      await writeFile(small, randomBytes(1000));
      const [res] = await publishFiles([small], `s3://${BUCKET}/skew/`, { client: c });
      assert.ok(res && !res.skipped);
      assert.ok(
        skewed.requests.some((r) => r.error === 'RequestTimeTooSkewed' && r.status === 403),
        'the store refused the first request as too skewed',
      );
      assert.equal(await sha256File(skewed.objectFile(BUCKET, 'skew/skew.tar')), await sha256File(small));
    } finally {
      c.destroy();
      await skewed.stop();
    }
  });

  it('does not resume an upload whose parts differ from the local file', async () => {
    const c = await client();
    const file = join(dir.path, 'changing.tar');
    await writeFile(file, randomBytes(2 * PART + 10));
    const ac = new AbortController();
    await assert.rejects(
      publishFiles([file], `s3://${BUCKET}/changing/`, {
        client: c,
        partSize: PART,
        concurrency: 1,
        signal: ac.signal,
        onProgress: (p) => {
          if (p.phase === 'uploading' && p.partsDone >= 1) ac.abort();
        },
      }),
      AbortedError,
    );
    // The file changes before the retry: part 1 no longer matches.
    const fh = await open(file, 'r+');
    await fh.write(Buffer.from('changed'), 0, 7, 100);
    await fh.close();
    const before = server.requests.length;
    const [res] = await publishFiles([file], `s3://${BUCKET}/changing/`, { client: c, partSize: PART });
    assert.equal(res?.resumedUploadId, undefined);
    assert.equal(res?.uploadedParts, 3);
    assert.equal(server.requests.slice(before).filter((r) => r.op === 'CreateMultipartUpload').length, 1);
    assert.equal(
      await sha256File(server.objectFile(BUCKET, 'changing/changing.tar')),
      await sha256File(file),
    );
  });

  it('publishes small files with one PutObject carrying Content-MD5 and SHA-256', async () => {
    const c = await client();
    const small = join(dir.path, 'shop-2.4.0.tar.sha256');
    await writeFile(small, `${bundleSha}  shop-2.4.0.tar\n`);
    const before = server.requests.length;
    const [res] = await publishFiles([small], `s3://${BUCKET}`, { client: c });
    assert.equal(res?.key, 'shop-2.4.0.tar.sha256');
    const puts = server.requests.slice(before).filter((r) => r.op === 'PutObject' && r.status === 200);
    assert.equal(puts.length, 1);
    assert.deepEqual(puts[0]?.integrity, ['content-md5', 'x-amz-checksum-sha256']);
    assert.equal(server.objectInfo(BUCKET, 'shop-2.4.0.tar.sha256')?.checksumSha256 !== undefined, true);
    assert.equal(
      await readFile(server.objectFile(BUCKET, 'shop-2.4.0.tar.sha256'), 'utf8'),
      `${bundleSha}  shop-2.4.0.tar\n`,
    );
  });

  it('the store checks part checksums: a wrong SHA-256 is BadDigest → S3ChecksumError (exit 3)', async () => {
    const c = await client();
    const { CreateMultipartUploadCommand } = await import('@aws-sdk/client-s3');
    const up = await c.send(
      new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: 'bad/part', ChecksumAlgorithm: 'SHA256' }),
    );
    const data = Buffer.from('some part data');
    const err = await c
      .send(
        new UploadPartCommand({
          Bucket: BUCKET,
          Key: 'bad/part',
          UploadId: up.UploadId,
          PartNumber: 1,
          Body: data,
          ChecksumSHA256: createHash('sha256').update('other data').digest('base64'),
        }),
      )
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    assert.ok(err, 'the store accepted a part whose checksum does not match');
    const mapped = toS3Error(err, { bucket: BUCKET, key: 'bad/part' });
    assert.ok(mapped instanceof S3ChecksumError);
    assert.equal((mapped as S3ChecksumError).exitCode, ExitCode.verification);
    assert.match(mapped.message, /s3:\/\/drop-zone\/bad\/part/);
  });

  it('wrong credentials → S3Error (exit 4) naming the bucket, with a hint', async () => {
    for (const creds of [
      { accessKeyId: 'NOSUCHKEY', secretAccessKey: server.secretAccessKey },
      { accessKeyId: server.accessKeyId, secretAccessKey: 'wrong-secret' },
    ]) {
      const bad = await createS3Client({
        endpoint: server.endpoint,
        region: server.region,
        credentials: creds,
      });
      await assert.rejects(
        publishFiles([bundle], `s3://${BUCKET}/denied/`, { client: bad, partSize: PART }),
        (err: unknown) => {
          assert.ok(err instanceof S3Error, String(err));
          assert.equal(err.code, 'S3_AUTH');
          assert.equal(err.exitCode, ExitCode.remote);
          assert.match(err.message, /drop-zone/);
          assert.match(err.hint ?? '', /AWS_ACCESS_KEY_ID/);
          return true;
        },
      );
      const out = join(dir.path, 'denied.tar');
      await assert.rejects(
        fetchObject(`s3://${BUCKET}/releases/shop-2.4.0.tar`, out, { client: bad }),
        (err: unknown) => err instanceof S3Error && err.code === 'S3_AUTH' && /drop-zone/.test(err.message),
      );
      await assert.rejects(readFile(out), { code: 'ENOENT' });
    }
    // Signed with the wrong secret, the request is refused as SignatureDoesNotMatch.
    assert.ok(server.requests.some((r) => r.error === 'SignatureDoesNotMatch'));
    assert.ok(server.requests.some((r) => r.error === 'InvalidAccessKeyId'));
  });

  it('a missing bucket → S3Error S3_NO_SUCH_BUCKET (exit 4) naming it', async () => {
    const c = await client();
    const check = (err: unknown) => {
      assert.ok(err instanceof S3Error, String(err));
      assert.equal(err.code, 'S3_NO_SUCH_BUCKET');
      assert.equal(err.exitCode, ExitCode.remote);
      assert.match(err.message, /no-such-bucket/);
      return true;
    };
    await assert.rejects(
      publishFiles([bundle], 's3://no-such-bucket/x/', { client: c, partSize: PART }),
      check,
    );
    const out = join(dir.path, 'nobucket.tar');
    await assert.rejects(fetchObject('s3://no-such-bucket/x/shop.tar', out, { client: c }), check);
    await assert.rejects(readFile(out), { code: 'ENOENT' });
  });

  it('a missing object → S3NotFoundError (a NotFoundError, exit 4) and nothing at --output', async () => {
    const c = await client();
    const out = join(dir.path, 'missing.tar');
    await assert.rejects(
      fetchObject(`s3://${BUCKET}/nothing/here.tar`, out, { client: c }),
      (err: unknown) => {
        assert.ok(err instanceof S3NotFoundError);
        assert.ok(err instanceof NotFoundError);
        assert.equal(err.exitCode, ExitCode.remote);
        assert.match(err.message, /s3:\/\/drop-zone\/nothing\/here\.tar/);
        return true;
      },
    );
    await assert.rejects(readFile(out), { code: 'ENOENT' });
    await assert.rejects(openS3Object(`s3://${BUCKET}/nothing/here.tar`, { client: c }), S3NotFoundError);
  });

  it('fetch verifies: an object corrupted on the store → VerificationError (exit 3), no file at --output', async () => {
    const c = await client();
    const [res] = await publishFiles([bundle], `s3://${BUCKET}/corrupt/`, { client: c, partSize: PART });
    assert.ok(res);
    const fh = await open(server.objectFile(BUCKET, 'corrupt/shop-2.4.0.tar'), 'r+');
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, 7 * MiB);
    b[0] = (b[0] ?? 0) ^ 0xff;
    await fh.write(b, 0, 1, 7 * MiB);
    await fh.close();
    const out = join(dir.path, 'corrupt.tar');
    await assert.rejects(
      fetchObject(`s3://${BUCKET}/corrupt/shop-2.4.0.tar`, out, {
        client: c,
        partSize: 2 * MiB,
        concurrency: 3,
      }),
      (err: unknown) => {
        assert.ok(err instanceof S3ChecksumError, String(err));
        assert.ok(err instanceof VerificationError);
        assert.equal(err.exitCode, ExitCode.verification);
        assert.match(err.message, /s3:\/\/drop-zone\/corrupt\/shop-2\.4\.0\.tar/);
        return true;
      },
    );
    await assert.rejects(readFile(out), { code: 'ENOENT' });
    assert.deepEqual(
      (await readdir(dir.path)).filter((n) => n.includes('.tmp-')),
      [],
    );
    // An expected sha256 from elsewhere (a parts .sha256 file) is checked too.
    await assert.rejects(
      fetchObject(`s3://${BUCKET}/releases/shop-2.4.0.tar`, out, {
        client: c,
        expectedSha256: 'f'.repeat(64),
      }),
      VerificationError,
    );
    const ok = await fetchObject(`s3://${BUCKET}/releases/shop-2.4.0.tar`, out, {
      client: c,
      expectedSha256: `sha256:${bundleSha}`,
    });
    assert.equal(ok.verifiedAgainst, 'expected');
  });

  it('an aborted fetch leaves nothing at --output', async () => {
    const c = await client();
    const out = join(dir.path, 'aborted.tar');
    const ac = new AbortController();
    await assert.rejects(
      fetchObject(`s3://${BUCKET}/releases/shop-2.4.0.tar`, out, {
        client: c,
        partSize: MiB,
        concurrency: 1,
        signal: ac.signal,
        onProgress: (p) => {
          if (p.bytesDone >= 2 * MiB) ac.abort();
        },
      }),
      AbortedError,
    );
    await assert.rejects(readFile(out), { code: 'ENOENT' });
    assert.deepEqual(
      (await readdir(dir.path)).filter((n) => n.includes('.tmp-')),
      [],
    );
  });

  it('openS3Object streams ranges of an object, and of split parts as one', async () => {
    const c = await client();
    const src = await openS3Object(`s3://${BUCKET}/releases/shop-2.4.0.tar`, {
      client: c,
      chunkSize: 3 * MiB,
    });
    assert.equal(src.size, size);
    assert.equal(src.info.metadata[META_SHA256], bundleSha);
    const whole = await streamSha(src.createReadStream());
    assert.deepEqual(whole, { hex: bundleSha, size });
    const local = await readFile(bundle);
    const start = 5 * MiB - 10;
    const end = 11 * MiB + 3;
    const part = await streamSha(src.createReadStream(start, end));
    assert.equal(part.hex, createHash('sha256').update(local.subarray(start, end)).digest('hex'));
    assert.deepEqual(await src.read(size - 5, 100), local.subarray(size - 5));

    // A split bundle: NAME.tar.000, NAME.tar.001 published side by side.
    const p0 = join(dir.path, 'split.tar.000');
    const p1 = join(dir.path, 'split.tar.001');
    await writeFile(p0, local.subarray(0, 6 * MiB));
    await writeFile(p1, local.subarray(6 * MiB));
    await publishFiles([p0, p1], `s3://${BUCKET}/split/`, { client: c, partSize: PART });
    const split = await openS3Object(`s3://${BUCKET}/split/split.tar`, { client: c });
    assert.deepEqual(split.paths, [
      `s3://${BUCKET}/split/split.tar.000`,
      `s3://${BUCKET}/split/split.tar.001`,
    ]);
    assert.equal(split.size, size);
    assert.deepEqual(await streamSha(split.createReadStream()), { hex: bundleSha, size });
    assert.deepEqual(await split.read(6 * MiB - 4, 8), local.subarray(6 * MiB - 4, 6 * MiB + 4));
  });

  it('a range whose GET keeps failing is sent maxAttempts times, not attempts × maxAttempts', async () => {
    // A store that answers HEAD and then 503 SlowDown to every GET (the stand-in has no faults).
    let gets = 0;
    const flaky = createServer((req, res) => {
      if (req.method === 'HEAD') {
        res.writeHead(200, {
          'content-length': '1024',
          etag: '"e"',
          'last-modified': new Date().toUTCString(),
        });
        res.end();
        return;
      }
      gets++;
      res.writeHead(503, { 'content-type': 'application/xml' });
      res.end('<?xml version="1.0"?><Error><Code>SlowDown</Code><Message>slow down</Message></Error>');
    });
    await new Promise<void>((r) => flaky.listen(0, '127.0.0.1', r));
    const { port } = flaky.address() as AddressInfo;
    const c = await createS3Client({
      endpoint: `http://127.0.0.1:${port}`,
      region: 'us-east-1',
      credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
      maxAttempts: 3,
    });
    try {
      const err = await fetchObject('s3://flaky-bucket/k', join(dir.path, 'flaky.out'), {
        client: c,
        attempts: 3,
      }).catch((e: unknown) => e);
      assert.ok(err instanceof RemoteError, String(err));
      assert.equal(gets, 3, 'the SDK tried 3 times; the range loop must not multiply that');
    } finally {
      c.destroy();
      flaky.close();
    }
  });
});
