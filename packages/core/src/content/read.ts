import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { VerifyingStream } from '../digest/index.ts';
import { InvalidInputError } from '../errors/index.ts';
import { type Descriptor, MAX_MANIFEST_BYTES } from '../model/index.ts';
import type { CallOptions, Fetcher } from './content.ts';

/** Fetch and wrap the stream so it fails on a size or digest mismatch (as it flows). */
export async function fetchVerified(
  fetcher: Fetcher,
  desc: Descriptor,
  opts: CallOptions & { source?: string } = {},
): Promise<Readable> {
  const raw = await fetcher.fetch(desc, opts);
  const verify = new VerifyingStream({ digest: desc.digest, size: desc.size }, opts.source ?? desc.digest);
  raw.on('error', (err) => verify.destroy(err));
  return raw.pipe(verify);
}

/**
 * Read small content (manifests, configs, metadata) fully into memory, verified. Refuses
 * anything whose descriptor is larger than `limit` — blobs are never read this way.
 */
export async function fetchAll(
  fetcher: Fetcher,
  desc: Descriptor,
  opts: CallOptions & { limit?: number; source?: string } = {},
): Promise<Buffer> {
  const limit = opts.limit ?? MAX_MANIFEST_BYTES;
  if (desc.size > limit) {
    throw new InvalidInputError(
      `${opts.source ?? desc.digest} is ${desc.size} bytes, more than ${limit} allowed here`,
      {
        hint: 'only manifests and small metadata are read into memory',
      },
    );
  }
  const stream = await fetchVerified(fetcher, desc, opts);
  const chunks: Buffer[] = [];
  await pipeline(
    stream,
    async (source: AsyncIterable<Buffer>) => {
      for await (const c of source) chunks.push(c);
    },
    { signal: opts.signal as AbortSignal },
  );
  return Buffer.concat(chunks);
}

/** A Readable over bytes in memory (for pushing small documents). */
export function bytesStream(bytes: Uint8Array): Readable {
  return Readable.from([Buffer.from(bytes)], { objectMode: false });
}
