import { InvalidInputError, NotFoundError } from '../errors/index.ts';

/** A directory that is not (or not a readable) OCI image layout. */
export class InvalidLayoutError extends InvalidInputError {
  override readonly code = 'INVALID_LAYOUT';
  readonly dir: string;
  constructor(dir: string, reason: string, hint?: string) {
    super(`${dir} is not a usable OCI image layout: ${reason}`, {
      hint: hint ?? 'point at a directory holding oci-layout, index.json and blobs/, or open it with create',
    });
    this.dir = dir;
  }
}

/** A blob, manifest or reference that the layout does not hold. */
export class LayoutNotFoundError extends NotFoundError {
  override readonly code = 'LAYOUT_NOT_FOUND';
  readonly dir: string;
  readonly subject: string;
  constructor(dir: string, subject: string, hint?: string) {
    super(`${subject} not found in OCI layout ${dir}`, {
      hint: hint ?? 'check the reference or digest; list the layout with `tags()`',
    });
    this.dir = dir;
    this.subject = subject;
  }
}
