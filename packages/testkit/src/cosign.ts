import { createHash, type KeyObject, sign } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RegistryServer } from './registry.ts';

/**
 * Supply-chain artifacts written from their public formats, independently of Lading's own code,
 * straight to a plain-HTTP test registry with fetch:
 * - cosign's tag scheme: a `sha256-<hex>.sig` manifest whose layer is the simple-signing payload
 *   with the base64 DER signature in the `dev.cosignproject.cosign/signature` annotation;
 * - OCI 1.1 referrers (an SBOM, a Sigstore bundle) with `subject`, listed in the referrers tag
 *   schema index `sha256-<hex>` (Distribution 2.8 has no referrers API);
 * - Sigstore bundles v0.3 (message signature or DSSE), signed with a key (publicKey hint).
 */

export const COSIGN_SIG_ANNOTATION = 'dev.cosignproject.cosign/signature';
export const SIMPLE_SIGNING_TYPE = 'application/vnd.dev.cosign.simplesigning.v1+json';
export const SIGSTORE_BUNDLE_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const EMPTY = 'application/vnd.oci.empty.v1+json';

export interface Desc {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

function sha256(b: Buffer | string): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

function baseUrl(reg: Pick<RegistryServer, 'url'>): string {
  return reg.url.replace(/\/$/, '');
}

/** Blob upload: POST for a session, then one PUT ?digest= with the bytes; returns its descriptor. */
export async function putBlob(
  reg: Pick<RegistryServer, 'url'>,
  repo: string,
  bytes: Buffer,
  mediaType: string,
): Promise<Desc> {
  const digest = sha256(bytes);
  const start = await fetch(`${baseUrl(reg)}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  await start.arrayBuffer();
  const location = start.headers.get('location');
  if (start.status !== 202 || !location) throw new Error(`blob upload to ${repo}: HTTP ${start.status}`);
  const url = new URL(location, baseUrl(reg));
  url.searchParams.set('digest', digest);
  const res = await fetch(url, {
    method: 'PUT',
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(bytes.length) },
    body: bytes,
  });
  if (res.status !== 201) throw new Error(`blob upload to ${repo}: HTTP ${res.status} ${await res.text()}`);
  return { mediaType, digest, size: bytes.length };
}

/** PUT a manifest under a tag or its digest; returns its descriptor. */
export async function putManifest(
  reg: Pick<RegistryServer, 'url'>,
  repo: string,
  doc: unknown,
  ref?: string,
): Promise<Desc & { bytes: Buffer }> {
  const bytes = Buffer.from(JSON.stringify(doc));
  const mediaType = (doc as { mediaType: string }).mediaType;
  const digest = sha256(bytes);
  const res = await fetch(`${baseUrl(reg)}/v2/${repo}/manifests/${ref ?? digest}`, {
    method: 'PUT',
    headers: { 'content-type': mediaType },
    body: bytes,
  });
  if (res.status !== 201)
    throw new Error(`manifest PUT ${repo}:${ref ?? digest}: HTTP ${res.status} ${await res.text()}`);
  return { mediaType, digest, size: bytes.length, bytes };
}

/** GET a manifest's raw bytes (undefined on 404). */
export async function getManifest(
  reg: Pick<RegistryServer, 'url'>,
  repo: string,
  ref: string,
): Promise<Buffer | undefined> {
  const res = await fetch(`${baseUrl(reg)}/v2/${repo}/manifests/${ref}`, {
    headers: {
      accept: `${OCI_INDEX}, ${OCI_MANIFEST}, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json`,
    },
  });
  if (res.status === 404) return undefined;
  if (res.status !== 200) throw new Error(`GET ${repo}:${ref}: HTTP ${res.status}`);
  return Buffer.from(await res.arrayBuffer());
}

/** The simple-signing payload cosign signs for `digest`. */
export function simpleSigningPayload(dockerReference: string, digest: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      critical: {
        identity: { 'docker-reference': dockerReference },
        image: { 'docker-manifest-digest': digest },
        type: 'cosign container image signature',
      },
      optional: null,
    }),
  );
}

export interface CosignSignOptions {
  /** Digest the payload names (default: `digest`; another one makes a replayed signature). */
  payloadDigest?: string;
  /** Raw payload bytes instead of a simple-signing document (e.g. unparsable ones). */
  payload?: Buffer;
}

/**
 * Sign `repo@digest` as `cosign sign --key` does and push `sha256-<hex>.sig`: ECDSA/RSA with
 * SHA-256 (DER), Ed25519 pure. Returns the signature manifest's descriptor and the payload.
 */
export async function cosignSign(
  reg: Pick<RegistryServer, 'url' | 'host'>,
  repo: string,
  digest: string,
  key: KeyObject,
  opts: CosignSignOptions = {},
): Promise<{ manifest: Desc & { bytes: Buffer }; payload: Buffer; signature: string; tag: string }> {
  const payload = opts.payload ?? simpleSigningPayload(`${reg.host}/${repo}`, opts.payloadDigest ?? digest);
  const alg = key.asymmetricKeyType === 'ed25519' ? null : 'sha256';
  const signature = sign(
    alg,
    payload,
    key.asymmetricKeyType === 'ec' ? { key, dsaEncoding: 'der' } : key,
  ).toString('base64');
  const layer = await putBlob(reg, repo, payload, SIMPLE_SIGNING_TYPE);
  const config = Buffer.from(
    JSON.stringify({
      architecture: '',
      config: {},
      created: '0001-01-01T00:00:00Z',
      history: [{ created: '0001-01-01T00:00:00Z' }],
      os: '',
      rootfs: { type: 'layers', diff_ids: [layer.digest] },
    }),
  );
  const cfg = await putBlob(reg, repo, config, 'application/vnd.oci.image.config.v1+json');
  const tag = `${digest.replace(':', '-')}.sig`;
  const manifest = await putManifest(
    reg,
    repo,
    {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: cfg,
      layers: [{ ...layer, annotations: { [COSIGN_SIG_ANNOTATION]: signature } }],
    },
    tag,
  );
  return { manifest, payload, signature, tag };
}

/**
 * Attach an artifact to `subject` as an OCI 1.1 referrer (empty config, one layer) and add it to
 * the referrers tag schema index `sha256-<hex>` (created or extended), as ORAS and cosign do
 * against a registry without the referrers API.
 */
export async function attachReferrer(
  reg: Pick<RegistryServer, 'url'>,
  repo: string,
  subject: Desc,
  artifactType: string,
  content: Buffer,
  layerMediaType = artifactType,
): Promise<Desc & { bytes: Buffer }> {
  const empty = await putBlob(reg, repo, Buffer.from('{}'), EMPTY);
  const layer = await putBlob(reg, repo, content, layerMediaType);
  const manifest = await putManifest(reg, repo, {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType,
    config: empty,
    layers: [layer],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
  });
  const tag = subject.digest.replace(':', '-');
  const old = await getManifest(reg, repo, tag);
  const manifests: Desc[] = old ? (JSON.parse(old.toString('utf8')) as { manifests: Desc[] }).manifests : [];
  manifests.push({ mediaType: OCI_MANIFEST, digest: manifest.digest, size: manifest.size, artifactType });
  await putManifest(reg, repo, { schemaVersion: 2, mediaType: OCI_INDEX, manifests }, tag);
  return manifest;
}

/** DSSE pre-authentication encoding. */
function pae(type: string, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`DSSEv1 ${Buffer.byteLength(type)} ${type} ${body.length} `), body]);
}

/**
 * A Sigstore bundle v0.3 signed with `key` (publicKey hint, no tlog entries): a message signature
 * over `manifestBytes`, or (`dsse`) a DSSE envelope over an in-toto statement naming `digest`.
 */
export function sigstoreBundle(
  key: KeyObject,
  manifestBytes: Buffer,
  opts: { dsse?: boolean; digest?: string; image?: string } = {},
): Buffer {
  const digest = opts.digest ?? sha256(manifestBytes);
  const alg = key.asymmetricKeyType === 'ed25519' ? null : 'sha256';
  const signOpts = key.asymmetricKeyType === 'ec' ? { key, dsaEncoding: 'der' as const } : key;
  const verificationMaterial = { publicKey: { hint: 'vendor' }, tlogEntries: [] };
  if (opts.dsse) {
    const statement = Buffer.from(
      JSON.stringify({
        _type: 'https://in-toto.io/Statement/v1',
        subject: [{ name: opts.image ?? 'image', digest: { sha256: digest.slice(7) } }],
        predicateType: 'https://sigstore.dev/cosign/sign/v1',
        predicate: {},
      }),
    );
    const type = 'application/vnd.in-toto+json';
    const sig = sign(alg, pae(type, statement), signOpts);
    return Buffer.from(
      JSON.stringify({
        mediaType: SIGSTORE_BUNDLE_TYPE,
        verificationMaterial,
        dsseEnvelope: {
          payload: statement.toString('base64'),
          payloadType: type,
          signatures: [{ sig: sig.toString('base64'), keyid: '' }],
        },
      }),
    );
  }
  const sig = sign(alg, manifestBytes, signOpts);
  return Buffer.from(
    JSON.stringify({
      mediaType: SIGSTORE_BUNDLE_TYPE,
      verificationMaterial,
      messageSignature: {
        messageDigest: {
          algorithm: 'SHA2_256',
          digest: Buffer.from(digest.slice(7), 'hex').toString('base64'),
        },
        signature: sig.toString('base64'),
      },
    }),
  );
}

export interface ReferrersStandIn {
  /** `127.0.0.1:PORT`. */
  host: string;
  url: string;
  /** Every request, `METHOD path`, oldest first. */
  requests: string[];
  stop(): Promise<void>;
}

/**
 * A STAND-IN for a registry with the OCI 1.1 referrers API (Distribution 2.8 has none): a proxy in
 * front of a real plain-HTTP registry that answers `GET /v2/<name>/referrers/<digest>` itself — from
 * the registry's referrers tag schema index, and from the referrers pushed through it (manifests
 * with a `subject`) — and forwards everything else unchanged.
 */
export async function startReferrersStandIn(reg: Pick<RegistryServer, 'url'>): Promise<ReferrersStandIn> {
  const requests: string[] = [];
  const pushed = new Map<string, Desc[]>();
  const server = createServer((req, res) => {
    void (async () => {
      requests.push(`${req.method} ${req.url}`);
      const m = /^\/v2\/(.+)\/referrers\/(sha256:[0-9a-f]{64})/.exec(req.url ?? '');
      if (m && req.method === 'GET') {
        const r = await fetch(`${baseUrl(reg)}/v2/${m[1]}/manifests/${m[2]!.replace(':', '-')}`, {
          headers: { accept: OCI_INDEX },
        });
        const listed = r.status === 200 ? ((await r.json()) as { manifests: Desc[] }).manifests : [];
        const manifests = [...listed, ...(pushed.get(`${m[1]}@${m[2]}`) ?? [])];
        res.writeHead(200, { 'content-type': OCI_INDEX });
        res.end(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }));
        return;
      }
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const body = Buffer.concat(chunks);
      const put = /^\/v2\/(.+)\/manifests\/([^/?]+)$/.exec(req.url ?? '');
      if (put && req.method === 'PUT') {
        try {
          const doc = JSON.parse(body.toString('utf8')) as {
            subject?: Desc;
            artifactType?: string;
            mediaType: string;
          };
          if (doc.subject) {
            const key = `${put[1]}@${doc.subject.digest}`;
            const list = pushed.get(key) ?? [];
            list.push({
              mediaType: doc.mediaType,
              digest: sha256(body),
              size: body.length,
              ...(doc.artifactType ? { artifactType: doc.artifactType } : {}),
            });
            pushed.set(key, list);
          }
        } catch {
          // not JSON: the registry will refuse it
        }
      }
      const headers = Object.fromEntries(
        Object.entries(req.headers).filter(([k]) => k !== 'host' && k !== 'connection'),
      ) as Record<string, string>;
      const up = await fetch(`${baseUrl(reg)}${req.url}`, {
        method: req.method ?? 'GET',
        headers,
        ...(body.length || req.method === 'PUT' || req.method === 'PATCH' ? { body } : {}),
        redirect: 'manual',
      });
      const out: Record<string, string> = {};
      up.headers.forEach((v, k) => {
        if (k !== 'transfer-encoding' && k !== 'connection' && k !== 'content-encoding') out[k] = v;
      });
      res.writeHead(up.status, out);
      res.end(Buffer.from(await up.arrayBuffer()));
    })().catch((err: unknown) => {
      res.writeHead(502);
      res.end(String(err));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    host,
    url: `http://${host}`,
    requests,
    stop: () => new Promise<void>((r) => server.close(() => r())),
  };
}
