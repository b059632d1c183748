import type { ChecksumSignature } from '../checksum-file.ts';
import { collectParts, parsePartName, partsChecksumSignatureName } from '../format.ts';
import type { PartDigest } from '../source.ts';
import { parseSums } from '../sums.ts';
import type { ProblemList } from './problems.ts';
import type { PartReport } from './report.ts';

/** The parts of a split bundle as found beside its first part (see `parts-input.ts`). */
export interface PartsInput {
  /** `NAME.tar`: every part is `NAME.tar.NNN`. */
  stem: string;
  /** The part files present, by name. */
  onDisk: readonly string[];
  /** The parts checksum file `NAME.tar.sha256` (its name), when the source has one. */
  checksumName: string | undefined;
  /** Its bytes; undefined when it is missing or unreadable. */
  text: Buffer | undefined;
  /** Its signature `NAME.tar.sha256.sig` checked over `text` with the release key. */
  signature: ChecksumSignature | undefined;
}

/**
 * The signature `NAME.tar.sha256.sig` over the checksum file's bytes (the parts and the
 * standalone loader are authenticated only through it).
 */
export function checkChecksumFileSignature(
  name: string,
  state: ChecksumSignature,
  keyFingerprint: string,
  problems: ProblemList,
): void {
  const sigName = partsChecksumSignatureName(name);
  if (state === 'missing') {
    problems.add(
      sigName,
      'signature',
      `${sigName} is missing: ${name} (the list of parts and the loader's checksum) is not signed`,
    );
  } else if (state === 'bad') {
    problems.add(
      sigName,
      'signature',
      `the signature over ${name} does not verify with key ${keyFingerprint} (the file was changed after signing, or signed with another key)`,
    );
  }
}

/**
 * The list of parts: no gap in the numbering, the parts file present, signed and well formed,
 * every part it lists present and every present part listed. Returns the sha256 hex it lists
 * for each part (undefined when there is no usable parts file).
 */
export function checkPartsList(
  input: PartsInput,
  keyFingerprint: string,
  problems: ProblemList,
): Map<string, string> | undefined {
  const { stem, checksumName: file } = input;
  const onDisk = new Set(input.onDisk);
  // A gap in the numbering is a missing part whatever the parts file says.
  const width = parsePartName(input.onDisk[0] ?? '')?.width ?? 3;
  for (const n of collectParts(stem, width, onDisk).missing) {
    problems.add(n, 'missing', `split bundle part ${n} is missing`);
  }
  if (!file) return undefined;
  if (input.text === undefined) {
    problems.add(file, 'missing', `the parts checksum file ${file} is missing`);
    return undefined;
  }
  checkChecksumFileSignature(file, input.signature ?? 'missing', keyFingerprint, problems);
  let expected: Map<string, string>;
  try {
    // Lines that do not name a part of this bundle (the standalone loader put beside it by
    // `create --with-loader`) are not parts: `sha256sum -c` checks them, the bundle reader ignores them.
    const isPart = (p: string) => parsePartName(p)?.base === stem;
    expected = new Map(
      parseSums(input.text, file)
        .filter((e) => isPart(e.path))
        .map((e) => [e.path, e.hex]),
    );
  } catch (err) {
    problems.add(file, 'schema', (err as Error).message);
    return undefined;
  }
  for (const name of expected.keys()) {
    if (!onDisk.has(name)) problems.add(name, 'missing', `split bundle part ${name} is missing`);
  }
  for (const name of onDisk) {
    if (!expected.has(name)) problems.add(name, 'extra', `part ${name} is not listed in ${file}`);
  }
  return expected;
}

/** A part hashed whole, against the sha256 the parts file lists for it. */
export function checkPartDigest(
  part: PartDigest,
  expected: ReadonlyMap<string, string> | undefined,
  checksumName: string,
  problems: ProblemList,
): PartReport {
  const want = expected?.get(part.name);
  if (want !== undefined && want !== part.hex) {
    problems.add(part.name, 'digest', `sha256 of the part is ${part.hex}, ${checksumName} says ${want}`);
  }
  return { name: part.name, ok: true, sha256: part.hex, problems: [] };
}

/**
 * The report of every part: those hashed, with their problems, then those listed but not read
 * (missing, or after a stop).
 */
export function partReports(
  hashed: readonly PartReport[],
  expected: ReadonlyMap<string, string> | undefined,
  problems: ProblemList,
): PartReport[] {
  const out = hashed.map((part) => {
    const p = problems.about(part.name);
    return { ...part, ok: p.length === 0, problems: p };
  });
  for (const [name] of expected ?? []) {
    if (!out.some((p) => p.name === name)) {
      out.push({ name, ok: false, sha256: null, problems: problems.about(name) });
    }
  }
  return out;
}
