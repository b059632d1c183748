import { InvalidInputError } from '../errors/index.ts';

/** A platform filter matched nothing in the image. */
export class PlatformNotFoundError extends InvalidInputError {
  override readonly code = 'PLATFORM_NOT_FOUND';
  readonly reference: string;
  readonly wanted: string[];
  readonly available: string[];
  constructor(reference: string, wanted: string[], available: string[]) {
    super(
      `${reference} has no image for ${wanted.join(', ')}; it has ${available.length > 0 ? available.join(', ') : 'no platform information'}`,
      {
        hint:
          available.length > 0
            ? `choose among ${available.join(', ')}, or drop the platform filter for this image`
            : 'drop the platform filter for this image',
      },
    );
    this.reference = reference;
    this.wanted = wanted;
    this.available = available;
  }
}
