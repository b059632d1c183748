import type * as S3 from '@aws-sdk/client-s3';

let loading: Promise<typeof S3> | undefined;

/**
 * The AWS SDK, loaded on first use. It is about half of `@lading/core`'s load time, and most
 * commands never touch S3, so nothing imports it at start-up.
 */
export function s3sdk(): Promise<typeof S3> {
  loading ??= import('@aws-sdk/client-s3');
  return loading;
}
