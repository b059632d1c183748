import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import type { TransportOptions } from '../registry/index.ts';
import { S3HttpHandler } from './http-handler.ts';
import { s3sdk } from './sdk.ts';

export type { S3Client } from '@aws-sdk/client-s3';

export interface S3ClientOptions {
  /** An S3-compatible endpoint (MinIO, Ceph RGW, …), e.g. `https://s3.site.internal:9000`. */
  endpoint?: string;
  /** Region; default: the AWS chain (AWS_REGION, profile), else `us-east-1`. */
  region?: string;
  /** Path-style addressing (`endpoint/bucket/key`); default true when `endpoint` is given. */
  forcePathStyle?: boolean;
  /** Named profile from ~/.aws/config and ~/.aws/credentials (like AWS_PROFILE, for this client only). */
  profile?: string;
  /**
   * Explicit credentials. Leave unset in production: the SDK's default chain then resolves
   * them (environment, SSO, shared profiles, credential_process, web identity, ECS, IMDS).
   */
  credentials?: S3ClientConfig['credentials'];
  /**
   * SDK-level attempts (default 3). The SDK never retries a request whose body is a stream, so
   * publish retries each part itself with a fresh ranged read of the file.
   */
  maxAttempts?: number;
  /**
   * The HTTP transport's options (CA, proxy). Requests go through Lading's transport, so the
   * proxy environment (HTTPS_PROXY/HTTP_PROXY/NO_PROXY) applies as for registries.
   */
  transport?: TransportOptions;
}

/**
 * Build an S3 client for Lading's transfers.
 *
 * Checksums: `requestChecksumCalculation: 'WHEN_REQUIRED'` stops the SDK from sending its
 * default CRC32 trailer checksums (`aws-chunked` bodies), which many S3-compatible stores
 * (older MinIO, Ceph RGW, appliances) reject. Lading computes SHA-256 and MD5 of every part itself
 * and sends them as `x-amz-checksum-sha256` and `Content-MD5` headers, which those stores check.
 * Responses are validated by Lading (sha256 of what was received), not by the SDK.
 */
export async function createS3Client(opts: S3ClientOptions = {}): Promise<S3Client> {
  const { S3Client } = await s3sdk();
  const config: S3ClientConfig = {
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    followRegionRedirects: true,
    maxAttempts: opts.maxAttempts ?? 3,
    forcePathStyle: opts.forcePathStyle ?? opts.endpoint !== undefined,
    region: opts.region ?? (() => defaultRegion(opts.profile)),
    requestHandler: new S3HttpHandler(opts.transport),
  };
  if (opts.endpoint !== undefined) config.endpoint = opts.endpoint;
  if (opts.profile !== undefined) config.profile = opts.profile;
  if (opts.credentials !== undefined) config.credentials = opts.credentials;
  return new S3Client(config);
}

/** The region the AWS chain resolves (env, profile), or us-east-1 when it names none. */
async function defaultRegion(profile: string | undefined): Promise<string> {
  const env = process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION;
  if (env) return env;
  // Let the SDK's own loader read the shared config files (it knows every setting that applies).
  const { S3Client } = await s3sdk();
  const probe = new S3Client(profile === undefined ? {} : { profile });
  try {
    return await probe.config.region();
  } catch {
    // No region anywhere: S3 answers every region's buckets from us-east-1 with a redirect,
    // which followRegionRedirects follows; S3-compatible stores mostly ignore the region.
    return 'us-east-1';
  } finally {
    probe.destroy();
  }
}
