import { stringify } from 'yaml';
import { safeName, sourceRepositories } from './sources.ts';
import type { MirrorConfig, MirrorInput } from './types.ts';

/** OpenShift `ImageDigestMirrorSet`: one entry per source repository. */
export function idmsConfig(input: MirrorInput): MirrorConfig {
  const { host, prefix } = input.target;
  const doc = {
    apiVersion: 'config.openshift.io/v1',
    kind: 'ImageDigestMirrorSet',
    metadata: { name: `lading-${safeName(input.name)}` },
    spec: {
      imageDigestMirrors: sourceRepositories(input.images).map((r) => ({
        source: `${r.registry}/${r.repository}`,
        mirrors: [`${host}/${prefix ? `${prefix}/` : ''}${r.repository}`],
      })),
    },
  };
  return {
    format: 'idms',
    files: [{ path: `imagedigestmirrorset-${safeName(input.name)}.yaml`, content: stringify(doc) }],
    instructions:
      'oc apply -f the file. IDMS mirrors pulls by digest; Lading keeps digests unchanged, so every image in ' +
      'the bundle resolves.' +
      (input.caFile || input.caCert
        ? ' Add the registry CA to the cluster image config (additionalTrustedCA).'
        : ''),
  };
}
