import type { RegistryTarget } from '../registry-target.ts';

export const MIRROR_FORMATS = ['containerd', 'k3s', 'registries-conf', 'idms', 'itms'] as const;
export type MirrorFormat = (typeof MIRROR_FORMATS)[number];

export interface MirrorInput {
  target: RegistryTarget;
  /** Full source references of the bundle's images (`docker.io/library/nginx:1.27.3`). */
  images: readonly string[];
  /** Path of the registry's CA certificate on the nodes, when it is private. */
  caFile?: string;
  /**
   * The registry's CA certificate itself (PEM): written beside the configuration where each
   * runtime reads it (containerd and containers certs.d, a file for k3s), and referenced there
   * unless `caFile` names another path.
   */
  caCert?: string;
  /**
   * Mutual TLS (`serve --client-ca`): where each node keeps its own client certificate and key
   * (PEM). Paths on the nodes; each node has its own pair, so none is shipped.
   */
  clientCert?: { cert: string; key: string };
  /** Plain HTTP registry (tests, labs). */
  plainHttp?: boolean;
  /** Bundle name, used to name generated objects. */
  name: string;
  /**
   * Images whose platform filter wrote a new index (lading.json digest != upstreamDigest): the
   * upstream index digest does not exist at the mirror; a pull by it fails.
   */
  digestChanges?: ReadonlyArray<{ ref: string; upstreamDigest: string; digest: string }>;
}

/** One generated file: where it goes on a node (relative path) and its content. */
export interface MirrorFile {
  path: string;
  content: string;
}

export interface MirrorConfig {
  format: MirrorFormat;
  files: MirrorFile[];
  /** How to apply it, for people. */
  instructions: string;
}
