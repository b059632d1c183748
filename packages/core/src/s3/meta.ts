/** Metadata keys (`x-amz-meta-…`) on objects Lading publishes. */

/** sha256 (hex) of the object's own bytes, written by publish, checked by fetch. */
export const META_SHA256 = 'lading-sha256';
/** The part size the object was uploaded with (resume needs the same one). */
export const META_PART_SIZE = 'lading-part-size';
/** sha256 (hex) of the bundle's SHA256SUMS member; the caller passes it to publish. */
export const META_SUMS_SHA256 = 'lading-sums-sha256';
