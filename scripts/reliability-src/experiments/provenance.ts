/**
 * Provenance attack cases (issue 10 §2): upstream signatures that must stop `lading-build create`
 * (exit 3, no bundle file) — a replayed signature, a wrong key, a missing signature, an unparsable
 * payload — a control that must pass, and `lading-load verify --image-key` with the wrong vendor key
 * at the site. Signatures are written in cosign's format into the source registry by testkit.
 */
import { generateKeyPairSync } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RegistryServer, TestImage } from '@lading/testkit';
import { cosignSign } from '@lading/testkit/cosign';
import { fresh, LOAD_BIN, ladingEnv, log, NODE, specYaml } from '../../bench-src/lib/common.ts';
import { lastError, type Ran, run } from '../lib/proc.ts';
import { type Ctx, create } from './context.ts';

export interface ProvenanceCase {
  id: string;
  what: string;
  /** Exit of `create` (with the verify: rule). */
  createExit: number;
  /** Exit of `verify --image-key` on what create wrote (-1 when nothing was written). */
  verifyExit: number;
  /** Files at the output path (or temporaries beside it) after create. */
  written: string[];
  expected: string;
  ok: boolean;
  message: string;
}

export interface ProvenanceRunners {
  src: RegistryServer;
  images: TestImage[];
  dir: string;
  /** `lading-build create --spec SPEC --output OUT` against the source registry. */
  create(spec: string, output: string): Promise<Ran>;
  /** `lading-load verify BUNDLE --key release.pub --image-key KEY`. */
  verifyImageKey(bundle: string, imageKey: string): Promise<Ran>;
  lastError(r: Ran): string;
  log(m: string): void;
}

export async function provenanceCases(r: ProvenanceRunners): Promise<ProvenanceCase[]> {
  const vendor = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const attacker = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const keys = join(r.dir, 'keys');
  await mkdir(keys, { recursive: true });
  await writeFile(join(keys, 'vendor.pub'), vendor.publicKey.export({ type: 'spki', format: 'pem' }));
  await writeFile(join(keys, 'attacker.pub'), attacker.publicKey.export({ type: 'spki', format: 'pem' }));
  const img = (name: string) => {
    const i = r.images.find((x) => x.name === name);
    if (!i) throw new Error(`no test image ${name}`);
    return i;
  };
  const app = img('demo/app');
  // the vendor signs demo/app; the other images get the attacks
  await cosignSign(r.src, 'demo/app', app.digest, vendor.privateKey);
  await cosignSign(r.src, 'demo/legacy', img('demo/legacy').digest, attacker.privateKey);
  await cosignSign(r.src, 'demo/base-a', img('demo/base-a').digest, vendor.privateKey, {
    payloadDigest: app.digest,
  });
  await cosignSign(r.src, 'demo/base-b', img('demo/base-b').digest, vendor.privateKey, {
    payload: Buffer.from('{"critical": {"image": '),
  });
  const list: Array<{ id: string; what: string; image: TestImage; control?: boolean }> = [
    {
      id: 'control',
      what: 'a valid vendor signature (control: must pass, and verify --image-key too)',
      image: app,
      control: true,
    },
    { id: 'signature:wrong-key', what: "signed by another key than the rule's", image: img('demo/legacy') },
    {
      id: 'signature:replayed',
      what: "the vendor's valid signature of demo/app put under demo/base-a's .sig tag (payload names another digest)",
      image: img('demo/base-a'),
    },
    { id: 'signature:unparsable', what: 'a signature whose payload is not JSON', image: img('demo/base-b') },
    { id: 'signature:missing', what: 'no signature at all', image: img('demo/multi') },
  ];
  const out: ProvenanceCase[] = [];
  let controlBundle: string | undefined;
  for (const c of list) {
    const caseDir = join(r.dir, c.id.replace(':', '-'));
    await mkdir(caseDir, { recursive: true });
    const spec = join(caseDir, 'lading.yaml');
    // the rule's key, beside the spec (key paths are relative to it)
    await writeFile(join(caseDir, 'vendor.pub'), vendor.publicKey.export({ type: 'spki', format: 'pem' }));
    const text = `${specYaml(`prov-${c.id.replace(':', '-')}`, '1.0.0', [
      `${r.src.host}/${c.image.name}:${c.image.tag}`,
    ])}verify:\n  - images: ["${r.src.host}/${c.image.name}"]\n    keys: [vendor.pub]\n`;
    await writeFile(spec, text);
    const output = join(caseDir, 'out.tar');
    const made = await r.create(spec, output);
    const written = (await readdir(caseDir)).filter(
      (f) => f.startsWith('out.tar') || f.startsWith('.out.tar'),
    );
    let verifyExit = -1;
    if (c.control && existsSync(output)) {
      controlBundle = output;
      verifyExit = (await r.verifyImageKey(output, join(caseDir, 'vendor.pub'))).code;
    }
    const ok = c.control ? made.code === 0 && verifyExit === 0 : made.code === 3 && written.length === 0;
    out.push({
      id: c.id,
      what: c.what,
      createExit: made.code,
      verifyExit,
      written,
      expected: c.control ? 'create exit 0, verify --image-key exit 0' : 'create exit 3, no bundle file',
      ok,
      message: r.lastError(made),
    });
    r.log(
      `${c.id}: create ${made.code}, written ${written.length}, verify ${verifyExit} ${ok ? 'ok' : 'PROBLEM'}`,
    );
  }
  if (controlBundle) {
    const v = await r.verifyImageKey(controlBundle, join(keys, 'attacker.pub'));
    const ok = v.code === 3;
    out.push({
      id: 'site:wrong-image-key',
      what: 'the control bundle verified at the site with another vendor key (--image-key)',
      createExit: 0,
      verifyExit: v.code,
      written: [],
      expected: 'verify --image-key exit 3',
      ok,
      message: r.lastError(v),
    });
    r.log(`site:wrong-image-key: verify ${v.code} ${ok ? 'ok' : 'PROBLEM'}`);
  }
  return out;
}

/** The section, run against the clean run's context (last: it adds .sig tags to the source registry). */
export async function provenanceSection(ctx: Ctx): Promise<ProvenanceCase[]> {
  return provenanceCases({
    src: ctx.src,
    images: ctx.images,
    dir: await fresh('provenance'),
    create: (spec, output) => create({ spec, key: ctx.key }, output, { plainHttp: ctx.src.host }),
    verifyImageKey: async (bundle, imageKey) => {
      const { env } = await ladingEnv();
      return run(NODE, [LOAD_BIN, 'verify', bundle, '--key', ctx.pub, '--image-key', imageKey], { env });
    },
    lastError,
    log,
  });
}
