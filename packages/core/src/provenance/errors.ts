import { InvalidInputError, VerificationError } from '../errors/index.ts';

/**
 * An image matched by a spec `verify:` rule has no valid signature by the rule's keys (exit 3).
 * Names the image, the rule and why each candidate signature failed.
 */
export class UpstreamSignatureError extends VerificationError {
  override readonly code = 'UPSTREAM_SIGNATURE';
  readonly image: string;
  readonly rule: string;
  readonly reasons: string[];
  constructor(image: string, rule: string, reasons: string[], hint?: string) {
    super(`${image}: no valid signature for verify rule ${rule}: ${reasons.join('; ')}`, {
      hint:
        hint ??
        "check that the vendor signed this digest with one of the rule's keys (cosign verify --key KEY IMAGE@DIGEST), or change the rule",
    });
    this.image = image;
    this.rule = rule;
    this.reasons = reasons;
  }
}

/** A public key given for image signatures cannot be used (exit 2). */
export class ImageKeyError extends InvalidInputError {
  override readonly code = 'INVALID_IMAGE_KEY';
  readonly file: string;
  constructor(file: string, message: string, hint: string, cause?: unknown) {
    super(message, { hint, ...(cause === undefined ? {} : { cause }) });
    this.file = file;
  }
}
