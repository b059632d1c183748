export { issueCert, type IssuedCert, makeCA, makeTestCA, type TestCA } from './ca.ts';
export {
  REGISTRY_BIN,
  type RegistryMode,
  type RegistryServer,
  type StartRegistryOptions,
  startRegistry,
} from './registry.ts';
export { freePort, tmpDir } from './tmp.ts';
export {
  parseScope,
  startTokenServer,
  type TokenRequestRecord,
  type TokenServer,
  type TokenServerOptions,
  type TokenUser,
} from './token-server.ts';
