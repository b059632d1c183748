/**
 * The environment of a test's run: no credential store and no proxy of the developer's or of CI.
 * The Docker config and auth.json paths point at nothing (unset, the tools would fall back to
 * ~/.docker/config.json and ~/.config/containers/auth.json); HTTP(S)_PROXY, ALL_PROXY and NO_PROXY
 * (either case) are removed, so a request to 127.0.0.1 goes to 127.0.0.1. A test that wants one of
 * these sets it on top.
 */
export function isolatedEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...env };
  for (const k of Object.keys(out)) if (/^(http|https|all|no)_proxy$/i.test(k)) delete out[k];
  out.DOCKER_CONFIG = '/nonexistent/lading-test/docker';
  out.REGISTRY_AUTH_FILE = '/nonexistent/lading-test/containers/auth.json';
  return out;
}

/** `isolatedEnv` applied to this process (for tests that run the code in-process). */
export function isolateProcessEnv(): void {
  const want = isolatedEnv();
  for (const k of Object.keys(process.env)) if (!(k in want)) delete process.env[k];
  Object.assign(process.env, want);
}
