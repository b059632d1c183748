import { formatReference, parseReference, withDefaultTag } from '@lading/core';

/** An image reference normalised as Docker does, `latest` when untagged: `docker.io/library/nginx:latest`. */
export function normalizeImageRef(ref: string): string {
  const parsed = parseReference(ref);
  return formatReference(parsed.digest ? parsed : withDefaultTag(parsed));
}
