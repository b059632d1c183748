import { z } from 'zod';

/**
 * The shape of `lading.yaml` (docs/spec-file.md) as a zod schema: what the parser validates and what
 * the editor JSON Schema (schema/lading.schema.json) is generated from. Rules that need the file
 * system or the whole document (paths exist, releases name a chart, exactly one chart source,
 * semver versions, valid references) are checked by parse.ts after this.
 */

const PLATFORM_RE = /^[a-z0-9._-]+\/[a-z0-9._-]+(\/[a-z0-9._-]+)?$/;
export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const VERSION_RE = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;
/** Helm release names: lowercase DNS-1123 subdomain, at most 53 characters. */
const RELEASE_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** Kubernetes namespaces: DNS-1123 label, at most 63 characters. */
const NAMESPACE_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export const platformSchema = z
  .string()
  .regex(PLATFORM_RE, { error: 'expected a platform os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8' })
  .meta({
    description: 'A platform, os/architecture[/variant].',
    examples: ['linux/amd64', 'linux/arm64/v8'],
  });

const platformsSchema = z
  .array(platformSchema)
  .min(1, { error: 'list at least one platform, or leave the field out' })
  .meta({ description: 'Keep only these platforms of multi-platform images.' });

const refSchema = z.string().min(1, { error: 'expected an image reference' }).meta({
  description:
    'An image reference by tag or digest, e.g. docker.io/library/nginx:1.27.3 or ghcr.io/acme/api@sha256:…',
});

const relPathSchema = z
  .string()
  .min(1, { error: 'expected a path' })
  .meta({ description: "A path relative to the spec's folder (it must exist and stay inside that folder)." });

export const imageObjectSchema = z
  .strictObject({
    ref: refSchema,
    platforms: platformsSchema.optional(),
    extras: z.boolean().optional().meta({
      description:
        "Carry this image's signatures, attestations, SBOMs and OCI referrers (default: the spec's extras, true).",
    }),
  })
  .meta({ description: 'An image with its own platform filter.' });

export const imageSchema = z
  .union([refSchema, imageObjectSchema])
  .meta({ description: 'An image: a reference, or {ref, platforms}.' });

export const chartImagesSchema = z
  .union([
    z.enum(['discover', 'none']),
    z.array(refSchema).meta({ description: 'Exactly these images (no discovery).' }),
  ])
  .meta({
    description:
      "Which images the chart needs: 'discover' (default: values.yaml image fields and the artifacthub.io/images annotation), 'none', or an explicit list of references.",
  });

export const CHART_SOURCES = ['repo', 'oci', 'path'] as const;

export const chartSchema = z
  .strictObject({
    name: z
      .string()
      .regex(NAME_RE, { error: 'expected a chart name (letters, digits, ".", "_", "-")' })
      .optional()
      .meta({
        description:
          "The chart's name: required with repo (the name in the repository); with oci it defaults to the last path component, with path to Chart.yaml's name. Releases refer to charts by it.",
      }),
    repo: z
      .string()
      .min(1)
      .optional()
      .meta({ description: 'An HTTP(S) Helm chart repository: the URL of the folder holding index.yaml.' }),
    oci: z.string().min(1).optional().meta({
      description: 'A chart in an OCI registry: oci://host/path/name (the version goes in version).',
    }),
    path: relPathSchema
      .optional()
      .meta({ description: 'A local chart folder or .tgz archive, relative to the spec.' }),
    version: z.string().min(1).optional().meta({
      description:
        'An exact version (6.7.1) or a semver range ("^18.1.0"); default: the highest stable version.',
    }),
    images: chartImagesSchema.optional(),
  })
  .meta({ description: 'A Helm chart: exactly one of repo, oci or path.' });

const valuesListSchema = z
  .array(relPathSchema)
  .meta({ description: 'Helm values files, in order; packed into files/.' });

export const releaseSchema = z
  .strictObject({
    name: z
      .string()
      .max(53, { error: 'a release name has at most 53 characters' })
      .regex(RELEASE_RE, { error: 'expected a Helm release name (lowercase letters, digits, "-" and ".")' })
      .meta({ description: 'The Helm release name.' }),
    chart: z.string().min(1).meta({ description: 'The name of a chart in charts.' }),
    namespace: z
      .string()
      .max(63, { error: 'a namespace has at most 63 characters' })
      .regex(NAMESPACE_RE, { error: 'expected a Kubernetes namespace (lowercase letters, digits and "-")' })
      .optional()
      .meta({ description: 'The namespace to install into.' }),
    values: valuesListSchema.optional(),
    profiles: z
      .record(
        z.string().regex(NAME_RE, { error: 'expected a profile name (letters, digits, ".", "_", "-")' }),
        valuesListSchema,
      )
      .optional()
      .meta({
        description: 'Named sets of extra values files; `lading-load install --profile NAME` adds one.',
      }),
  })
  .meta({ description: 'A release `lading-load install` installs, in order.' });

export const verifyRuleSchema = z
  .strictObject({
    images: z.array(z.string().min(1)).min(1, { error: 'list at least one image glob' }).meta({
      description:
        'Globs over full normalised references (docker.io/bitnami/*, ghcr.io/acme/**): * stays within one path segment, ** crosses them. A glob without a tag or digest matches every tag and digest of the repository.',
    }),
    keys: z.array(relPathSchema).min(1, { error: 'list at least one public key' }).meta({
      description:
        'PEM public keys, relative to the spec (ECDSA P-256/P-384, RSA >= 2048, Ed25519): one valid signature by any of them is enough.',
    }),
  })
  .meta({
    description: 'Images that must carry a valid upstream signature (cosign, or a Sigstore bundle referrer).',
  });

export const specSchema = z
  .strictObject({
    apiVersion: z
      .literal('lading/v1', { error: 'expected apiVersion: lading/v1' })
      .meta({ description: 'Always lading/v1.' }),
    name: z
      .string()
      .regex(NAME_RE, { error: 'expected a bundle name (letters, digits, ".", "_", "-")' })
      .meta({ description: 'The bundle name.' }),
    version: z
      .string()
      .regex(VERSION_RE, { error: 'expected a bundle version such as 2.4.0' })
      .meta({ description: 'The bundle version.' }),
    platforms: platformsSchema.optional(),
    images: z.array(imageSchema).optional().meta({ description: 'Container images to bundle.' }),
    charts: z
      .array(chartSchema)
      .optional()
      .meta({ description: 'Helm charts to bundle (with the images they need).' }),
    releases: z
      .array(releaseSchema)
      .optional()
      .meta({ description: 'What `lading-load install` installs, in order.' }),
    files: z
      .array(relPathSchema)
      .optional()
      .meta({ description: 'Extra files packed into files/ (docs, tools).' }),
    extras: z.boolean().optional().meta({
      description:
        "Carry each image's supply-chain artifacts: cosign .sig/.att/.sbom tags and OCI referrers (default true).",
    }),
    verify: z.array(verifyRuleSchema).optional().meta({
      description: 'Upstream signatures checked at build time; create stops (exit 3) when one is missing.',
    }),
  })
  .meta({
    title: 'Lading bundle spec (lading.yaml)',
    description:
      'What lading-build puts in a bundle: images, Helm charts, releases and files. See docs/spec-file.md in the Lading repository.',
  });

export type RawSpec = z.infer<typeof specSchema>;

/** Allowed keys per object kind, for "did you mean" on unknown keys. */
export const KNOWN_KEYS = {
  spec: Object.keys(specSchema.shape),
  image: Object.keys(imageObjectSchema.shape),
  chart: Object.keys(chartSchema.shape),
  release: Object.keys(releaseSchema.shape),
  verify: Object.keys(verifyRuleSchema.shape),
};
