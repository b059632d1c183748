import { stringify } from 'yaml';
import { safeName, sourceRepositories } from './sources.ts';
import type { MirrorConfig, MirrorInput } from './types.ts';

/** What keeps its digest and what does not, as YAML comments and for the instructions. */
function digestNotes(input: MirrorInput): { comment: string; sentence: string } {
  const changes = input.digestChanges ?? [];
  if (changes.length === 0) {
    return {
      comment: '',
      sentence:
        'Lading keeps digests unchanged, so every image in the bundle resolves by its upstream digest.',
    };
  }
  const lines = changes.map((c) => `#   ${c.ref}: upstream ${c.upstreamDigest} -> bundled ${c.digest}`);
  return {
    comment: `# Platform-filtered indexes got a new digest; the upstream index digest does NOT exist at the mirror
# (pull these by tag, by the bundled digest, or by a platform manifest digest, which is unchanged):
${lines.join('\n')}
`,
    sentence:
      `Layers, platform manifests and unfiltered images keep their digests; ${changes.length} platform-filtered ` +
      `index(es) got a new digest (listed in the file): pulls by their upstream index digest fail at the mirror.`,
  };
}

function mirrorSet(input: MirrorInput, kind: 'ImageDigestMirrorSet' | 'ImageTagMirrorSet'): string {
  const { host, prefix } = input.target;
  const key = kind === 'ImageDigestMirrorSet' ? 'imageDigestMirrors' : 'imageTagMirrors';
  const doc = {
    apiVersion: 'config.openshift.io/v1',
    kind,
    metadata: { name: `lading-${safeName(input.name)}` },
    spec: {
      [key]: sourceRepositories(input.images).map((r) => ({
        source: `${r.registry}/${r.repository}`,
        mirrors: [`${host}/${prefix ? `${prefix}/` : ''}${r.repository}`],
      })),
    },
  };
  return `${digestNotes(input).comment}${stringify(doc)}`;
}

const CA = ' Add the registry CA to the cluster image config (additionalTrustedCA).';

/** OpenShift `ImageDigestMirrorSet`: one entry per source repository. */
export function idmsConfig(input: MirrorInput): MirrorConfig {
  return {
    format: 'idms',
    files: [
      {
        path: `imagedigestmirrorset-${safeName(input.name)}.yaml`,
        content: mirrorSet(input, 'ImageDigestMirrorSet'),
      },
    ],
    instructions:
      `oc apply -f the file. IDMS mirrors pulls by digest. ${digestNotes(input).sentence}` +
      (input.caFile || input.caCert ? CA : ''),
  };
}

/** OpenShift `ImageTagMirrorSet`: pulls by tag (what a filtered index needs), one entry per source repository. */
export function itmsConfig(input: MirrorInput): MirrorConfig {
  return {
    format: 'itms',
    files: [
      {
        path: `imagetagmirrorset-${safeName(input.name)}.yaml`,
        content: mirrorSet(input, 'ImageTagMirrorSet'),
      },
    ],
    instructions:
      `oc apply -f the file. ITMS mirrors pulls by tag; tags point at the bundled digests. ${digestNotes(input).sentence}` +
      (input.caFile || input.caCert ? CA : ''),
  };
}
