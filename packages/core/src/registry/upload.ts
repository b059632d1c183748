import { PassThrough, pipeline, type Readable } from 'node:stream';
import { VerifyingStream } from '../digest/index.ts';
import { AbortedError, throwIfAborted, VerificationError } from '../errors/index.ts';
import type { Descriptor } from '../model/index.ts';
import { repositoryScope } from './auth/scope.ts';
import type { RegistryClient, Response } from './client.ts';
import { BlobUnknownError, RegistryProtocolError, RegistryUnavailableError } from './errors.ts';

/**
 * Blob upload sessions (Distribution API): POST to open a session, then one monolithic PUT with
 * the whole stream, PATCH chunks with Content-Range and a closing PUT, or one streamed PATCH
 * (chunked transfer encoding) and a closing PUT. Bytes flow through a VerifyingStream; the
 * session is only committed (the final PUT with `?digest=`) after the stream verified, and it is
 * cancelled (DELETE) on any failure.
 * A chunk that fails on the wire is resumed from the offset the registry reports (GET on the
 * session), so each chunk is held in memory (at most `chunkSize` bytes) until accepted.
 *
 * Cancelling needs the session's current URL: Distribution signs the offset into it (`_state`)
 * and refuses a DELETE (BLOB_UPLOAD_INVALID) once the session holds more bytes than the URL says,
 * which is the case after a request body was cut off mid-stream. So the DELETE always comes after
 * the request in flight has ended, with the last URL the registry gave; and a streamed PATCH is
 * stopped by ending its body (the registry keeps what it got and answers with a fresh URL), not
 * by cutting the connection: an interrupted streamed upload leaves no session behind.
 */
export interface UploadOptions {
  /** Chunk size for chunked uploads (default 16 MiB). */
  chunkSize?: number;
  /**
   * 'auto' (default): monolithic up to chunkSize, chunked above; or force one. 'streamed': one
   * PATCH with the whole stream, then the closing PUT (an interrupt can still cancel the session).
   */
  mode?: 'auto' | 'monolithic' | 'chunked' | 'streamed';
}

export const DEFAULT_CHUNK_SIZE = 16 * 1024 * 1024;

export class BlobUpload {
  private readonly client: RegistryClient;
  readonly repository: string;
  private readonly scopes: string[];
  /** Whether the repository holds a blob now (HEAD): asked when a closing PUT lost its answer. */
  private readonly exists: (desc: Descriptor, signal?: AbortSignal) => Promise<boolean>;

  constructor(
    client: RegistryClient,
    repository: string,
    exists: (desc: Descriptor, signal?: AbortSignal) => Promise<boolean>,
  ) {
    this.client = client;
    this.repository = repository;
    this.scopes = [repositoryScope(repository, ['pull', 'push'])];
    this.exists = exists;
  }

  private location(res: Response, base: URL | string): URL {
    const loc = res.header('location');
    if (!loc) {
      throw new RegistryProtocolError('upload answer without a Location header', {
        registry: this.client.host,
        repository: this.repository,
        status: res.status,
      });
    }
    return new URL(loc, base instanceof URL ? base : this.client.url(base));
  }

  /**
   * Open an upload session; resolves with its URL. The POST itself is not cut short by `signal`
   * (a session the registry opened but whose answer was dropped could never be cancelled): it
   * finishes, and an aborted caller gets the session cancelled and AbortedError.
   */
  async start(signal?: AbortSignal, ref?: string): Promise<URL> {
    throwIfAborted(signal);
    const path = `/v2/${this.repository}/blobs/uploads/`;
    const res = await this.client.send({
      method: 'POST',
      path,
      headers: { 'content-length': '0' },
      body: Buffer.alloc(0),
      scopes: this.scopes,
      kind: 'upload',
      repository: this.repository,
      ...(ref ? { ref } : {}),
      expect: [202],
      signal: AbortSignal.timeout(60_000),
    });
    await res.body.dump();
    const location = this.location(res, path);
    if (signal?.aborted) {
      await this.cancel(location);
      throw new AbortedError(`${this.client.host}/${this.repository}: upload aborted`, {
        cause: signal.reason,
      });
    }
    return location;
  }

  /** Cancel a session (best effort, never throws). */
  async cancel(location: URL): Promise<void> {
    try {
      const res = await this.client.send({
        method: 'DELETE',
        path: location,
        scopes: this.scopes,
        kind: 'upload',
        repository: this.repository,
        expect: [204, 202, 200, 404],
        retry: false,
        signal: AbortSignal.timeout(10_000),
      });
      await res.body.dump();
    } catch {
      // the registry garbage-collects abandoned sessions
    }
  }

  /** How many bytes the registry holds for a session, and its current URL. */
  async status(location: URL, signal?: AbortSignal): Promise<{ offset: number; location: URL }> {
    const res = await this.client.send({
      method: 'GET',
      path: location,
      scopes: this.scopes,
      kind: 'upload',
      repository: this.repository,
      expect: [204, 200],
      ...(signal ? { signal } : {}),
    });
    await res.body.dump();
    const range = res.header('range');
    const m = range ? /^(?:bytes=)?(\d+)-(\d+)$/.exec(range.trim()) : null;
    const offset = m ? Number(m[2]) + 1 : 0;
    const next = res.header('location') ? this.location(res, location) : location;
    return { offset, location: next };
  }

  /**
   * Upload `content` as the blob `desc`. Throws DigestMismatch/SizeMismatch (nothing committed)
   * when the bytes differ from the descriptor.
   */
  async push(
    desc: Descriptor,
    content: Readable,
    opts: UploadOptions & { signal?: AbortSignal } = {},
  ): Promise<void> {
    const chunkSize = opts.chunkSize ?? DEFAULT_CHUNK_SIZE;
    const mode = opts.mode ?? 'auto';
    const chunked = mode === 'chunked' || (mode === 'auto' && desc.size > chunkSize);
    const signal = opts.signal;
    let location: URL;
    try {
      location = await this.start(signal, desc.digest);
    } catch (err) {
      content.destroy();
      throw err;
    }
    const verifier = new VerifyingStream(
      { digest: desc.digest, size: desc.size },
      `${this.client.host}/${this.repository}@${desc.digest} (upload)`,
    );
    let verifyError: Error | undefined;
    verifier.on('error', (err) => {
      verifyError ??= err;
    });
    pipeline(content, verifier, () => {});
    // The session's current URL, as the registry last gave it: what a DELETE must name.
    const session = { location };
    try {
      throwIfAborted(signal);
      if (mode === 'streamed') await this.streamed(session, desc, verifier, signal);
      else if (chunked) await this.chunked(session, desc, verifier, chunkSize, signal);
      else await this.commit(location, desc, verifier, signal);
    } catch (err) {
      content.destroy();
      verifier.destroy();
      // The request in flight has ended (aborted or answered): now the DELETE is accepted.
      await this.cancel(session.location);
      // Prefer the verification failure (the registry may have noticed first, differently).
      if (verifyError instanceof VerificationError) throw verifyError;
      if (signal?.aborted && !(err instanceof AbortedError))
        throw new AbortedError(`${this.client.host}/${this.repository}: upload aborted`, {
          cause: signal.reason,
        });
      throw err;
    }
  }

  /**
   * One PATCH whose body is the stream (no Content-Length: chunked transfer encoding), then the
   * closing PUT. On abort, or when the bytes do not verify, the body is ended where it is instead
   * of cut: the registry answers the PATCH with the session's new URL, which the caller's DELETE
   * then names. The PATCH is not retried (a stream cannot be replayed).
   */
  private async streamed(
    session: { location: URL },
    desc: Descriptor,
    verifier: Readable,
    signal?: AbortSignal,
  ): Promise<void> {
    const wire = new PassThrough();
    let stopped = false;
    const stop = () => {
      if (stopped) return;
      stopped = true;
      verifier.unpipe(wire);
      wire.end();
    };
    verifier.pipe(wire, { end: false });
    verifier.once('end', stop);
    verifier.once('error', stop);
    // Once stopped, the registry has a minute to answer before the request is given up.
    const giveUp = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const onAbort = () => {
      stop();
      timer ??= setTimeout(() => giveUp.abort(signal?.reason), 60_000);
      timer.unref();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      session.location = await this.patchOnce(session.location, wire, {}, desc, giveUp.signal);
    } finally {
      signal?.removeEventListener('abort', onAbort);
      if (timer) clearTimeout(timer);
      stop();
    }
    // The bytes did not verify (or the source failed): the body was ended early, nothing commits.
    if (verifier.errored) throw verifier.errored;
    throwIfAborted(signal);
    await this.commit(session.location, desc, undefined, signal);
  }

  /**
   * The closing PUT (`?digest=`): with the whole blob as its body (a monolithic upload), or empty
   * after the PATCHes; the digest the registry says it stored must be the one uploaded.
   */
  private async commit(
    location: URL,
    desc: Descriptor,
    body: Readable | undefined,
    signal?: AbortSignal,
  ): Promise<void> {
    // The PUT may reach the registry and commit the blob while its answer is lost (a reset
    // connection); sent again it would find the session gone (404 BLOB_UPLOAD_UNKNOWN). So after a
    // transient failure, or a 404 on a later attempt, a HEAD of the blob decides: there, the upload
    // is done; missing, an empty PUT is tried again (a body cannot be replayed: the error stands
    // and the copy starts a new session).
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await this.client.send({
          method: 'PUT',
          path: location,
          query: { digest: desc.digest },
          headers: body
            ? { 'content-type': 'application/octet-stream', 'content-length': String(desc.size) }
            : { 'content-length': '0' },
          body: body ?? Buffer.alloc(0),
          scopes: this.scopes,
          kind: 'upload',
          repository: this.repository,
          ref: desc.digest,
          expect: [201],
          retry: false,
          ...(signal ? { signal } : {}),
        });
        await res.body.dump();
        this.checkCommitted(res, desc);
        return;
      } catch (err) {
        const lost =
          err instanceof RegistryUnavailableError || (attempt > 1 && err instanceof BlobUnknownError);
        if (!lost || signal?.aborted) throw err;
        if (await this.exists(desc, signal)) return;
        if (body || err instanceof BlobUnknownError || attempt >= this.client.retry.maxAttempts) throw err;
        await this.client.retry.wait(this.client.retry.delayMs(attempt) ?? 0, signal);
      }
    }
  }

  private checkCommitted(res: Response, desc: Descriptor): void {
    const got = res.header('docker-content-digest');
    if (got && got !== desc.digest) {
      throw new RegistryProtocolError(`the registry stored ${got} for an upload of ${desc.digest}`, {
        registry: this.client.host,
        repository: this.repository,
        ref: desc.digest,
        status: res.status,
      });
    }
  }

  private async chunked(
    session: { location: URL },
    desc: Descriptor,
    verifier: Readable,
    chunkSize: number,
    signal?: AbortSignal,
  ): Promise<void> {
    let location = session.location;
    let offset = 0;
    let pending: Buffer[] = [];
    let pendingLen = 0;
    for await (const chunk of verifier as AsyncIterable<Buffer>) {
      pending.push(chunk);
      pendingLen += chunk.length;
      while (pendingLen >= chunkSize) {
        const all = Buffer.concat(pending);
        const part = all.subarray(0, chunkSize);
        const rest = all.subarray(chunkSize);
        pending = rest.length > 0 ? [Buffer.from(rest)] : [];
        pendingLen = rest.length;
        location = await this.patch(location, part, offset, desc, signal);
        session.location = location;
        offset += part.length;
      }
    }
    // The whole stream went through the verifier without error: size and digest match.
    if (pendingLen > 0) {
      const part = Buffer.concat(pending);
      location = await this.patch(location, part, offset, desc, signal);
      session.location = location;
      offset += part.length;
    }
    await this.commit(location, desc, undefined, signal);
  }

  /**
   * One PATCH of `body` (a chunk with its Content-Range, or the whole stream), never retried here;
   * resolves with the session's new URL.
   */
  private async patchOnce(
    location: URL,
    body: Buffer | Readable,
    headers: Record<string, string>,
    desc: Descriptor,
    signal?: AbortSignal,
  ): Promise<URL> {
    const res = await this.client.send({
      method: 'PATCH',
      path: location,
      headers: { 'content-type': 'application/octet-stream', ...headers },
      body,
      scopes: this.scopes,
      kind: 'upload',
      repository: this.repository,
      ref: desc.digest,
      expect: [202, 204],
      retry: false,
      ...(signal ? { signal } : {}),
    });
    await res.body.dump();
    return this.location(res, location);
  }

  /** PATCH one chunk; on a transient failure ask the registry how far it got and resume. */
  private async patch(
    location: URL,
    chunk: Buffer,
    offset: number,
    desc: Descriptor,
    signal?: AbortSignal,
  ): Promise<URL> {
    let loc = location;
    let data = chunk;
    let at = offset;
    const end = offset + chunk.length;
    for (let attempt = 1; ; attempt++) {
      try {
        const range = {
          'content-range': `${at}-${at + data.length - 1}`,
          'content-length': String(data.length),
        };
        return await this.patchOnce(loc, data, range, desc, signal);
      } catch (err) {
        if (!(err instanceof RegistryUnavailableError) || attempt >= this.client.retry.maxAttempts) throw err;
        await this.client.retry.wait(this.client.retry.delayMs(attempt) ?? 0, signal);
        // Resume: the registry tells how many bytes of the session it holds.
        const st = await this.status(loc, signal);
        if (st.offset >= end) return st.location;
        if (st.offset < offset || st.offset > end) throw err;
        loc = st.location;
        data = chunk.subarray(st.offset - offset);
        at = st.offset;
      }
    }
  }
}
