export { artifactNodes, copyArtifact, ReferrerSubjectError } from './artifact.ts';
export { checkSignatures, type SignatureCheck, type SignatureResult, type SignatureScheme } from './check.ts';
export {
  COSIGN_SIGNATURE_ANNOTATION,
  COSIGN_SUFFIXES,
  type CosignSuffix,
  cosignTag,
  digestOfTag,
  referrersTag,
  SIGSTORE_BUNDLE_MEDIA_TYPE,
  SIMPLE_SIGNING_MEDIA_TYPE,
  simpleSigningDigest,
  verifyWithImageKey,
} from './cosign.ts';
export { discoverExtras, type ExtraKind, type ExtraSource, type FoundExtra } from './discover.ts';
export { ImageKeyError, UpstreamSignatureError } from './errors.ts';
export { imageGlobProblem, matchesImageGlob } from './glob.ts';
export { type ImageKey, imageKeyFromPem, loadImageKey } from './keys.ts';
export { type ImageSignatureReport, recheckImageSignatures } from './recheck.ts';
