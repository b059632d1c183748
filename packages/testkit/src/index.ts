export { type IssuedCert, issueCert, makeCA, makeTestCA, type TestCA } from './ca.ts';
export { isolatedEnv, isolateProcessEnv } from './env.ts';
export { openDescriptors } from './fds.ts';
export {
  DEFAULT_LARGE_LAYER_BYTES,
  MT,
  REF_NAME,
  type TestImage,
  type WriteTestImagesOptions,
  writeTestImages,
} from './images.ts';
export { inCI, needs } from './needs.ts';
export { type CollectedRun, runCollect } from './proc.ts';
export { type ProxyServer, type StartProxyOptions, startProxy, TINYPROXY_BIN } from './proxy.ts';
export {
  type LoggedRequest,
  REGISTRY_BIN,
  type RegistryMode,
  type RegistryServer,
  registryRequests,
  type StartRegistryOptions,
  startRegistry,
} from './registry.ts';
export {
  SKOPEO_BIN,
  SkopeoError,
  type SkopeoIdentity,
  type SkopeoOptions,
  type SkopeoResult,
  seededRef,
  seedRegistry,
  skopeo,
  skopeoArgs,
  skopeoDigest,
  skopeoLayoutSource,
  skopeoRawManifest,
  skopeoRegistryFlags,
} from './skopeo.ts';
export { makeTar, type TarLayerEntry, tarHeader } from './tar.ts';
export { startTcpProxy, type TcpProxy } from './tcp-proxy.ts';
export { freePort, tmpDir } from './tmp.ts';
export {
  parseScope,
  startTokenServer,
  type TokenRequestRecord,
  type TokenServer,
  type TokenServerOptions,
  type TokenUser,
} from './token-server.ts';
export { startTripwire, type Tripwire, type TripwireOptions } from './tripwire.ts';
export { runOnTty, screenLines, type TtyRun } from './tty.ts';
