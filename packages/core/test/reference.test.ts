import assert from 'node:assert/strict';
import { InvalidInputError } from '../src/errors/index.ts';
import {
  familiarName,
  familiarRepository,
  formatReference,
  InvalidReferenceError,
  isNamedReference,
  parseAnyReference,
  parseNamed,
  parseReference,
  parseRepository,
  type Reference,
  ReferenceErrorReason,
  referenceName,
  trimReference,
  withDefaultTag,
  withDigest,
  withTag,
} from '../src/reference/index.ts';

// Cases modelled on distribution/reference's reference_test.go and normalize_test.go, with the
// values Docker's ParseNormalizedNamed produces.

const F64 = 'f'.repeat(64);
const SHA256_F = `sha256:${F64}`;
const SHA512_F = `sha512:${'f'.repeat(128)}`;
const REDIS_DIGEST = 'sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c';
const HEX_ID = '1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a';

interface Valid {
  input: string;
  registry: string;
  repository: string;
  tag?: string;
  digest?: string;
  /** Docker's String() of the normalised reference; defaults to registry/repository[:tag][@digest]. */
  full?: string;
  /** Docker's FamiliarString(). */
  familiar?: string;
}

const valid: Valid[] = [
  // familiar names and Docker Hub normalisation
  { input: 'nginx', registry: 'docker.io', repository: 'library/nginx', familiar: 'nginx' },
  {
    input: 'nginx:1.27.3',
    registry: 'docker.io',
    repository: 'library/nginx',
    tag: '1.27.3',
    full: 'docker.io/library/nginx:1.27.3',
    familiar: 'nginx:1.27.3',
  },
  { input: 'library/nginx', registry: 'docker.io', repository: 'library/nginx', familiar: 'nginx' },
  { input: 'docker.io/nginx', registry: 'docker.io', repository: 'library/nginx', familiar: 'nginx' },
  { input: 'docker.io/library/nginx', registry: 'docker.io', repository: 'library/nginx', familiar: 'nginx' },
  { input: 'index.docker.io/nginx', registry: 'docker.io', repository: 'library/nginx', familiar: 'nginx' },
  {
    input: 'index.docker.io/library/ubuntu-12.04-base',
    registry: 'docker.io',
    repository: 'library/ubuntu-12.04-base',
    familiar: 'ubuntu-12.04-base',
  },
  { input: 'index.docker.io/fooo/bar', registry: 'docker.io', repository: 'fooo/bar', familiar: 'fooo/bar' },
  { input: 'docker/docker', registry: 'docker.io', repository: 'docker/docker', familiar: 'docker/docker' },
  { input: 'docker.io/docker/docker', registry: 'docker.io', repository: 'docker/docker' },
  { input: 'index.docker.io/docker/docker', registry: 'docker.io', repository: 'docker/docker' },
  { input: 'other/library', registry: 'docker.io', repository: 'other/library', familiar: 'other/library' },
  {
    input: 'library/foo/bar',
    registry: 'docker.io',
    repository: 'library/foo/bar',
    familiar: 'library/foo/bar',
  },
  {
    input: 'docker.io/library/foo/bar',
    registry: 'docker.io',
    repository: 'library/foo/bar',
    familiar: 'library/foo/bar',
  },
  { input: 'store/foo/bar', registry: 'docker.io', repository: 'store/foo/bar', familiar: 'store/foo/bar' },
  { input: 'docker/migrator', registry: 'docker.io', repository: 'docker/migrator' },
  { input: 'test_com', registry: 'docker.io', repository: 'library/test_com', familiar: 'test_com' },
  { input: 'test_com/foo', registry: 'docker.io', repository: 'test_com/foo', familiar: 'test_com/foo' },
  { input: 'dmcgowan/myapp:latest', registry: 'docker.io', repository: 'dmcgowan/myapp', tag: 'latest' },
  {
    input: 'thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev',
    registry: 'docker.io',
    repository: 'library/thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev',
  },
  // 63 hex characters is not an image ID
  {
    input: 'dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9',
    registry: 'docker.io',
    repository: 'library/dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9',
  },
  // a 64-hex name is fine once the registry is spelled out
  { input: `docker.io/${HEX_ID}`, registry: 'docker.io', repository: `library/${HEX_ID}`, familiar: HEX_ID },
  { input: `${HEX_ID}:tag`, registry: 'docker.io', repository: `library/${HEX_ID}`, tag: 'tag' },
  // separators in path components
  { input: 'docker-rules/docker', registry: 'docker.io', repository: 'docker-rules/docker' },
  { input: 'docker---rules/docker', registry: 'docker.io', repository: 'docker---rules/docker' },
  { input: 'doc/docker', registry: 'docker.io', repository: 'doc/docker' },
  { input: 'd/docker', registry: 'docker.io', repository: 'd/docker' },
  { input: 'jess/t', registry: 'docker.io', repository: 'jess/t' },
  { input: 'dock__er/docker', registry: 'docker.io', repository: 'dock__er/docker' },
  { input: 'ab_c-d/e__f---g.h', registry: 'docker.io', repository: 'ab_c-d/e__f---g.h' },
  // what looks like a host but has no "/" is a Docker Hub image name with a tag
  {
    input: 'test.com:tag',
    registry: 'docker.io',
    repository: 'library/test.com',
    tag: 'tag',
    familiar: 'test.com:tag',
  },
  { input: 'test.com:5000', registry: 'docker.io', repository: 'library/test.com', tag: '5000' },
  { input: 'foo_bar.com:8080', registry: 'docker.io', repository: 'library/foo_bar.com', tag: '8080' },
  { input: 'foo/foo_bar.com:8080', registry: 'docker.io', repository: 'foo/foo_bar.com', tag: '8080' },
  { input: 'localhost', registry: 'docker.io', repository: 'library/localhost', familiar: 'localhost' },
  {
    input: 'localhost:5000',
    registry: 'docker.io',
    repository: 'library/localhost',
    tag: '5000',
    familiar: 'localhost:5000',
  },
  { input: '192.168.1.1', registry: 'docker.io', repository: 'library/192.168.1.1' },
  { input: '192.168.1.1:tag', registry: 'docker.io', repository: 'library/192.168.1.1', tag: 'tag' },
  { input: '192.168.0.1:80', registry: 'docker.io', repository: 'library/192.168.0.1', tag: '80' },
  // registries: dots, ports, localhost, IPv4, IPv6
  { input: 'test.com/repo:tag', registry: 'test.com', repository: 'repo', tag: 'tag' },
  { input: 'test.com/foo', registry: 'test.com', repository: 'foo', familiar: 'test.com/foo' },
  { input: 'test:5000/repo', registry: 'test:5000', repository: 'repo', familiar: 'test:5000/repo' },
  { input: 'test:5000/repo:tag', registry: 'test:5000', repository: 'repo', tag: 'tag' },
  { input: `test:5000/repo@${SHA256_F}`, registry: 'test:5000', repository: 'repo', digest: SHA256_F },
  {
    input: `test:5000/repo:tag@${SHA256_F}`,
    registry: 'test:5000',
    repository: 'repo',
    tag: 'tag',
    digest: SHA256_F,
    familiar: `test:5000/repo:tag@${SHA256_F}`,
  },
  { input: 'test.com:8080/foo', registry: 'test.com:8080', repository: 'foo' },
  { input: 'test-com:8080/foo', registry: 'test-com:8080', repository: 'foo' },
  { input: 'localhost/foo', registry: 'localhost', repository: 'foo', familiar: 'localhost/foo' },
  { input: 'localhost/library/debian', registry: 'localhost', repository: 'library/debian' },
  { input: 'localhost:5000/a', registry: 'localhost:5000', repository: 'a' },
  { input: 'localhost:5000/a/b/c:v1', registry: 'localhost:5000', repository: 'a/b/c', tag: 'v1' },
  { input: 'sub-dom1.foo.com/bar/baz/quux', registry: 'sub-dom1.foo.com', repository: 'bar/baz/quux' },
  {
    input: 'sub-dom1.foo.com/bar/baz/quux:some-long-tag',
    registry: 'sub-dom1.foo.com',
    repository: 'bar/baz/quux',
    tag: 'some-long-tag',
  },
  {
    input: 'b.gcr.io/test.example.com/my-app:test.example.com',
    registry: 'b.gcr.io',
    repository: 'test.example.com/my-app',
    tag: 'test.example.com',
  },
  {
    input: 'xn--n3h.com/myimage:xn--n3h.com',
    registry: 'xn--n3h.com',
    repository: 'myimage',
    tag: 'xn--n3h.com',
  },
  {
    input: `xn--7o8h.com/myimage:xn--7o8h.com@${SHA512_F}`,
    registry: 'xn--7o8h.com',
    repository: 'myimage',
    tag: 'xn--7o8h.com',
    digest: SHA512_F,
  },
  { input: 'xn--n3h.com:18080/foo', registry: 'xn--n3h.com:18080', repository: 'foo' },
  { input: '127.0.0.1:5000/docker/docker', registry: '127.0.0.1:5000', repository: 'docker/docker' },
  { input: '127.0.0.1:5000/library/debian', registry: '127.0.0.1:5000', repository: 'library/debian' },
  { input: '127.0.0.1:5000/debian', registry: '127.0.0.1:5000', repository: 'debian' },
  {
    input: '127.0.0.1:8000/private/moonbase',
    registry: '127.0.0.1:8000',
    repository: 'private/moonbase',
    familiar: '127.0.0.1:8000/private/moonbase',
  },
  { input: '192.168.0.1:8/debian', registry: '192.168.0.1:8', repository: 'debian' },
  { input: '192.168.0.2:25000/debian', registry: '192.168.0.2:25000', repository: 'debian' },
  { input: '192.168.1.1/repo', registry: '192.168.1.1', repository: 'repo' },
  { input: '192.168.1.1:5000/repo:5050', registry: '192.168.1.1:5000', repository: 'repo', tag: '5050' },
  { input: 'example.com/privatebase', registry: 'example.com', repository: 'privatebase' },
  {
    input: 'example.com:8000/private/moonbase',
    registry: 'example.com:8000',
    repository: 'private/moonbase',
  },
  { input: 'gcr.io/library/busybox', registry: 'gcr.io', repository: 'library/busybox' },
  { input: '[2001:db8::1]/repo', registry: '[2001:db8::1]', repository: 'repo' },
  {
    input: '[2001:db8:1:2:3:4:5:6]/repo:tag',
    registry: '[2001:db8:1:2:3:4:5:6]',
    repository: 'repo',
    tag: 'tag',
  },
  { input: '[2001:db8::1]:5000/repo', registry: '[2001:db8::1]:5000', repository: 'repo' },
  { input: '[2001:db8::1]:5000/repo:tag', registry: '[2001:db8::1]:5000', repository: 'repo', tag: 'tag' },
  {
    input: `[2001:db8::1]:5000/repo@${SHA256_F}`,
    registry: '[2001:db8::1]:5000',
    repository: 'repo',
    digest: SHA256_F,
  },
  {
    input: `[2001:db8::1]:5000/repo:tag@${SHA256_F}`,
    registry: '[2001:db8::1]:5000',
    repository: 'repo',
    tag: 'tag',
    digest: SHA256_F,
  },
  { input: '[2001:db8::]:5000/repo', registry: '[2001:db8::]:5000', repository: 'repo' },
  { input: '[::1]:5000/repo', registry: '[::1]:5000', repository: 'repo', familiar: '[::1]:5000/repo' },
  { input: '[::1]:5000/a', registry: '[::1]:5000', repository: 'a' },
  { input: '[fc00::1]:5000/docker/docker', registry: '[fc00::1]:5000', repository: 'docker/docker' },
  {
    input: '[fc00:1:2:3:4:5:6:7]:5000/library/debian',
    registry: '[fc00:1:2:3:4:5:6:7]:5000',
    repository: 'library/debian',
  },
  // an uppercase first component is taken for a registry (Docker's known FIXME)
  { input: 'Docker/docker', registry: 'Docker', repository: 'docker', familiar: 'Docker/docker' },
  { input: 'DOCKER/docker', registry: 'DOCKER', repository: 'docker' },
  { input: 'Foo/bar', registry: 'Foo', repository: 'bar', familiar: 'Foo/bar' },
  { input: 'Uppercase/lowercase:tag', registry: 'Uppercase', repository: 'lowercase', tag: 'tag' },
  // a first component with "." that is not a valid host: Docker leaves the domain empty
  { input: 'foo_bar.com/x', registry: '', repository: 'foo_bar.com/x', familiar: 'foo_bar.com/x' },
  { input: 'a.b_c-d/e:1', registry: '', repository: 'a.b_c-d/e', tag: '1' },
  // tags: uppercase allowed, up to 128 characters, "_" may lead
  { input: 'lowercase:Uppercase', registry: 'docker.io', repository: 'library/lowercase', tag: 'Uppercase' },
  {
    input: `nginx:${'t'.repeat(128)}`,
    registry: 'docker.io',
    repository: 'library/nginx',
    tag: 't'.repeat(128),
  },
  { input: 'nginx:_x.y-Z', registry: 'docker.io', repository: 'library/nginx', tag: '_x.y-Z' },
  // digests, and tag + digest together
  {
    input: `redis@${REDIS_DIGEST}`,
    registry: 'docker.io',
    repository: 'library/redis',
    digest: REDIS_DIGEST,
    familiar: `redis@${REDIS_DIGEST}`,
  },
  {
    input: `dmcgowan/myapp@${REDIS_DIGEST}`,
    registry: 'docker.io',
    repository: 'dmcgowan/myapp',
    digest: REDIS_DIGEST,
  },
  {
    input: 'busybox:latest@sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa',
    registry: 'docker.io',
    repository: 'library/busybox',
    tag: 'latest',
    digest: 'sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa',
    familiar: 'busybox:latest@sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa',
  },
  {
    input: `nginx:1.27@${SHA256_F}`,
    registry: 'docker.io',
    repository: 'library/nginx',
    tag: '1.27',
    digest: SHA256_F,
    full: `docker.io/library/nginx:1.27@${SHA256_F}`,
  },
  {
    input: `foo@sha384:${'a'.repeat(96)}`,
    registry: 'docker.io',
    repository: 'library/foo',
    digest: `sha384:${'a'.repeat(96)}`,
  },
  // length: the path may be 255 characters, the registry is not counted
  {
    input: `${'a/'.repeat(127)}a:tag-puts-this-over-max`,
    registry: 'docker.io',
    repository: `${'a/'.repeat(127)}a`,
    tag: 'tag-puts-this-over-max',
  },
  { input: `example.com/${'a'.repeat(255)}`, registry: 'example.com', repository: 'a'.repeat(255) },
];

interface Invalid {
  input: string;
  reason: ReferenceErrorReason;
}

const R = ReferenceErrorReason;
const invalid: Invalid[] = [
  { input: '', reason: R.NameEmpty },
  { input: ':justtag', reason: R.ReferenceInvalidFormat },
  { input: `@${SHA256_F}`, reason: R.ReferenceInvalidFormat },
  { input: `repo@sha256:${'f'.repeat(34)}`, reason: R.DigestInvalidFormat },
  { input: `repo@sha256:${'f'.repeat(65)}`, reason: R.DigestInvalidFormat },
  { input: `repo:tag@sha256:${'F'.repeat(64)}`, reason: R.DigestInvalidFormat },
  { input: `repo@sha512:${F64}`, reason: R.DigestInvalidFormat },
  { input: `validname@invaliddigest:${F64}`, reason: R.DigestUnsupported },
  { input: `repo@md5:${'a'.repeat(32)}`, reason: R.DigestUnsupported },
  { input: 'repo@sha256:abc', reason: R.ReferenceInvalidFormat },
  { input: 'repo@sha256', reason: R.ReferenceInvalidFormat },
  { input: 'Uppercase:tag', reason: R.NameContainsUppercase },
  { input: 'Uppercase', reason: R.NameContainsUppercase },
  { input: 'test:5000/Uppercase/lowercase:tag', reason: R.NameContainsUppercase },
  { input: 'docker/Docker', reason: R.NameContainsUppercase },
  { input: 'docker.io/docker/Docker', reason: R.NameContainsUppercase },
  { input: 'localhost:5000/Foo', reason: R.NameContainsUppercase },
  { input: `nginx@SHA256:${F64}`, reason: R.NameContainsUppercase },
  { input: `${'a/'.repeat(128)}a:tag`, reason: R.NameTooLong },
  { input: `example.com/${'a'.repeat(256)}`, reason: R.NameTooLong },
  { input: `${'a'.repeat(250)}`, reason: R.NameTooLong },
  {
    input:
      'this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255/docker',
    reason: R.NameTooLong,
  },
  { input: 'aa/asdf$$^/aa', reason: R.ReferenceInvalidFormat },
  { input: 'https://github.com/docker/docker', reason: R.ReferenceInvalidFormat },
  { input: '-docker', reason: R.ReferenceInvalidFormat },
  { input: '-foo', reason: R.ReferenceInvalidFormat },
  { input: '-docker/docker', reason: R.ReferenceInvalidFormat },
  { input: 'docker-/docker', reason: R.ReferenceInvalidFormat },
  { input: '-docker-/docker', reason: R.ReferenceInvalidFormat },
  { input: '-docker.io/docker/docker', reason: R.ReferenceInvalidFormat },
  { input: 'docker///docker', reason: R.ReferenceInvalidFormat },
  { input: 'docker.io/docker///docker', reason: R.ReferenceInvalidFormat },
  { input: '____/____', reason: R.ReferenceInvalidFormat },
  { input: '_docker/_docker', reason: R.ReferenceInvalidFormat },
  { input: 'dock..er/docker', reason: R.ReferenceInvalidFormat },
  { input: 'dock_.er/docker', reason: R.ReferenceInvalidFormat },
  { input: 'dock-.er/docker', reason: R.ReferenceInvalidFormat },
  { input: 'dock___er/docker', reason: R.ReferenceInvalidFormat },
  { input: 'docker/', reason: R.ReferenceInvalidFormat },
  { input: '/docker', reason: R.ReferenceInvalidFormat },
  { input: '[2001:db8::1]', reason: R.ReferenceInvalidFormat },
  { input: '[2001:db8::1]:5000', reason: R.ReferenceInvalidFormat },
  { input: '[2001:db8::1]:tag', reason: R.ReferenceInvalidFormat },
  { input: '[fc00::1]', reason: R.ReferenceInvalidFormat },
  { input: '[fc00::1]:5000', reason: R.ReferenceInvalidFormat },
  { input: 'fc00::1:5000/debian', reason: R.ReferenceInvalidFormat },
  { input: '[fe80::1%eth0]:5000/repo', reason: R.ReferenceInvalidFormat },
  { input: '[fe80::1%@invalidzone]:5000/repo', reason: R.ReferenceInvalidFormat },
  { input: '[2001:db8:3:4::192.0.2.33]:5000/debian', reason: R.ReferenceInvalidFormat },
  { input: 'example.com:port/repo', reason: R.ReferenceInvalidFormat },
  { input: 'nginx:-bad', reason: R.ReferenceInvalidFormat },
  { input: 'nginx:.bad', reason: R.ReferenceInvalidFormat },
  { input: `nginx:${'t'.repeat(129)}`, reason: R.ReferenceInvalidFormat },
  { input: 'nginx:', reason: R.ReferenceInvalidFormat },
  { input: 'nginx:a:b', reason: R.ReferenceInvalidFormat },
  { input: 'nginx latest', reason: R.ReferenceInvalidFormat },
  { input: ' nginx', reason: R.ReferenceInvalidFormat },
  { input: 'nginx\n', reason: R.ReferenceInvalidFormat },
  { input: 'ngïnx', reason: R.ReferenceInvalidFormat },
  { input: HEX_ID, reason: R.NameIsIdentifier },
  { input: F64, reason: R.NameIsIdentifier },
];

function expectReason(fn: () => unknown, reason: ReferenceErrorReason, label: string): InvalidReferenceError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(
    caught instanceof InvalidReferenceError,
    `${label}: expected InvalidReferenceError, got ${caught}`,
  );
  assert.equal(caught.reason, reason, `${label}: ${caught.message}`);
  return caught;
}

function short(s: string): string {
  return s.length > 70 ? `${s.slice(0, 60)}…(${s.length})` : s;
}

describe('reference', () => {
  describe('parseReference accepts and normalises as Docker does', () => {
    for (const c of valid) {
      it(JSON.stringify(short(c.input)), () => {
        const ref = parseReference(c.input);
        assert.equal(ref.registry, c.registry, 'registry');
        assert.equal(ref.repository, c.repository, 'repository');
        assert.equal(ref.tag, c.tag, 'tag');
        assert.equal(ref.digest, c.digest, 'digest');
        const name = c.registry === '' ? c.repository : `${c.registry}/${c.repository}`;
        const full =
          c.full ??
          name + (c.tag === undefined ? '' : `:${c.tag}`) + (c.digest === undefined ? '' : `@${c.digest}`);
        assert.equal(formatReference(ref), full, 'full string');
        assert.equal(referenceName(ref), name, 'name');
        if (c.familiar !== undefined) assert.equal(familiarName(ref), c.familiar, 'familiar string');
        // the full string is canonical: it parses to the same reference and passes parseNamed
        assert.deepEqual(parseReference(full), ref);
        assert.deepEqual(parseNamed(full), ref);
      });
    }
  });

  describe('parseReference rejects with Docker’s error kind', () => {
    for (const c of invalid) {
      it(`${JSON.stringify(short(c.input))} → ${c.reason}`, () => {
        const err = expectReason(() => parseReference(c.input), c.reason, c.input);
        assert.ok(err instanceof InvalidInputError);
        assert.equal(err.code, 'INVALID_REFERENCE');
        assert.equal(err.exitCode, 2);
        assert.equal(err.reference, c.input);
        assert.ok(err.message.includes(JSON.stringify(c.input)), `message quotes the input: ${err.message}`);
        assert.ok(err.hint && err.hint.length > 0, 'has a hint');
      });
    }
  });

  describe('error messages say what is wrong', () => {
    const cases: [string, RegExp][] = [
      ['nginx:-bad', /tag "-bad"/],
      ['nginx@sha256:abc', /digest "sha256:abc"/],
      [`repo@sha256:${'f'.repeat(34)}`, /64 lowercase hex/],
      [`x@md5:${'a'.repeat(32)}`, /algorithm "md5"/],
      ['docker/Docker', /must be lowercase/],
      [`${'a/'.repeat(128)}a`, /257 characters/],
      ['', /empty/],
      [HEX_ID, /image ID/],
      ['aa/asdf$$^/aa', /not valid/],
    ];
    for (const [input, re] of cases) {
      it(JSON.stringify(short(input)), () => {
        assert.throws(
          () => parseReference(input),
          (err: unknown) => {
            assert.ok(err instanceof InvalidReferenceError);
            assert.match(err.message, re);
            return true;
          },
        );
      });
    }
    it('serialises reason and reference in toJSON', () => {
      const err = expectReason(() => parseReference('Uppercase'), R.NameContainsUppercase, 'Uppercase');
      assert.deepEqual(
        { code: err.toJSON().code, reason: err.toJSON().reason, reference: err.toJSON().reference },
        { code: 'INVALID_REFERENCE', reason: 'ErrNameContainsUppercase', reference: 'Uppercase' },
      );
    });
  });

  describe('familiar, full and ambiguous spellings of one repository (TestParseRepositoryInfo)', () => {
    const table: { remote: string; familiar: string; full: string; ambiguous?: string; registry: string }[] =
      [
        {
          remote: 'fooo/bar',
          familiar: 'fooo/bar',
          full: 'docker.io/fooo/bar',
          ambiguous: 'index.docker.io/fooo/bar',
          registry: 'docker.io',
        },
        {
          remote: 'library/ubuntu',
          familiar: 'ubuntu',
          full: 'docker.io/library/ubuntu',
          ambiguous: 'library/ubuntu',
          registry: 'docker.io',
        },
        {
          remote: 'nonlibrary/ubuntu',
          familiar: 'nonlibrary/ubuntu',
          full: 'docker.io/nonlibrary/ubuntu',
          registry: 'docker.io',
        },
        {
          remote: 'other/library',
          familiar: 'other/library',
          full: 'docker.io/other/library',
          registry: 'docker.io',
        },
        {
          remote: 'private/moonbase',
          familiar: '127.0.0.1:8000/private/moonbase',
          full: '127.0.0.1:8000/private/moonbase',
          registry: '127.0.0.1:8000',
        },
        {
          remote: 'privatebase',
          familiar: '127.0.0.1:8000/privatebase',
          full: '127.0.0.1:8000/privatebase',
          registry: '127.0.0.1:8000',
        },
        {
          remote: 'private/moonbase',
          familiar: 'example.com/private/moonbase',
          full: 'example.com/private/moonbase',
          registry: 'example.com',
        },
        {
          remote: 'privatebasee',
          familiar: 'example.com:8000/privatebasee',
          full: 'example.com:8000/privatebasee',
          registry: 'example.com:8000',
        },
        {
          remote: 'library/ubuntu-12.04-base',
          familiar: 'ubuntu-12.04-base',
          full: 'docker.io/library/ubuntu-12.04-base',
          ambiguous: 'index.docker.io/library/ubuntu-12.04-base',
          registry: 'docker.io',
        },
        {
          remote: 'library/foo',
          familiar: 'foo',
          full: 'docker.io/library/foo',
          ambiguous: 'docker.io/foo',
          registry: 'docker.io',
        },
        {
          remote: 'library/foo/bar',
          familiar: 'library/foo/bar',
          full: 'docker.io/library/foo/bar',
          registry: 'docker.io',
        },
        {
          remote: 'store/foo/bar',
          familiar: 'store/foo/bar',
          full: 'docker.io/store/foo/bar',
          registry: 'docker.io',
        },
        { remote: 'bar', familiar: 'Foo/bar', full: 'Foo/bar', registry: 'Foo' },
        { remote: 'bar', familiar: 'FOO/bar', full: 'FOO/bar', registry: 'FOO' },
      ];
    for (const tc of table) {
      for (const input of [tc.familiar, tc.full, ...(tc.ambiguous ? [tc.ambiguous] : [])]) {
        it(input, () => {
          const ref = parseRepository(input);
          assert.equal(ref.registry, tc.registry);
          assert.equal(ref.repository, tc.remote);
          assert.equal(referenceName(ref), tc.full);
          assert.equal(familiarRepository(ref), tc.familiar);
          assert.equal(familiarName(parseReference(input)), tc.familiar);
        });
      }
    }
  });

  describe('parseNamed (Docker ParseNamed) requires the canonical form', () => {
    for (const ok of [
      'docker.io/library/nginx',
      'docker.io/library/nginx:1.27.3',
      `docker.io/library/nginx:1.27.3@${SHA256_F}`,
      'localhost/foo',
      'example.com:5000/a/b@' + SHA256_F,
      'Foo/bar',
    ]) {
      it(`accepts ${short(ok)}`, () => assert.equal(formatReference(parseNamed(ok)), ok));
    }
    for (const bad of [
      'nginx',
      'nginx:latest',
      'library/nginx',
      'docker.io/nginx',
      'index.docker.io/library/nginx',
      'user/app',
    ]) {
      it(`rejects ${bad}`, () => {
        const err = expectReason(() => parseNamed(bad), R.NameNotCanonical, bad);
        assert.match(err.hint ?? '', /docker\.io\//);
      });
    }
    it('reports a parse error before the canonical check', () => {
      expectReason(() => parseNamed('docker.io/library/Nginx'), R.NameContainsUppercase, 'Nginx');
    });
  });

  describe('parseAnyReference (Docker ParseAnyReference)', () => {
    const table: [string, string][] = [
      ['redis', 'docker.io/library/redis'],
      ['redis:latest', 'docker.io/library/redis:latest'],
      ['docker.io/library/redis:latest', 'docker.io/library/redis:latest'],
      [`redis@${REDIS_DIGEST}`, `docker.io/library/redis@${REDIS_DIGEST}`],
      [`docker.io/library/redis@${REDIS_DIGEST}`, `docker.io/library/redis@${REDIS_DIGEST}`],
      ['dmcgowan/myapp', 'docker.io/dmcgowan/myapp'],
      ['dmcgowan/myapp:latest', 'docker.io/dmcgowan/myapp:latest'],
      ['docker.io/mcgowan/myapp:latest', 'docker.io/mcgowan/myapp:latest'],
      [`dmcgowan/myapp@${REDIS_DIGEST}`, `docker.io/dmcgowan/myapp@${REDIS_DIGEST}`],
      [`docker.io/dmcgowan/myapp@${REDIS_DIGEST}`, `docker.io/dmcgowan/myapp@${REDIS_DIGEST}`],
      [
        'dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9',
        'docker.io/library/dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9',
      ],
      ['dbcc1', 'docker.io/library/dbcc1'],
      ['sha256:abc', 'docker.io/library/sha256:abc'],
    ];
    for (const [input, equivalent] of table) {
      it(short(input), () => {
        const ref = parseAnyReference(input);
        assert.ok(isNamedReference(ref));
        assert.equal(formatReference(ref), equivalent);
      });
    }
    it('turns a bare image ID into a sha256 digest', () => {
      const ref = parseAnyReference(REDIS_DIGEST.slice('sha256:'.length));
      assert.equal(isNamedReference(ref), false);
      assert.deepEqual(ref, { digest: REDIS_DIGEST });
    });
    it('returns a bare digest as digest-only', () => {
      assert.deepEqual(parseAnyReference(REDIS_DIGEST), { digest: REDIS_DIGEST });
      assert.deepEqual(parseAnyReference(SHA512_F), { digest: SHA512_F });
    });
    it('still rejects what parseReference rejects', () => {
      expectReason(() => parseAnyReference('Upper'), R.NameContainsUppercase, 'Upper');
    });
  });

  describe('withDefaultTag (Docker TagNameOnly) and parse-then-default (ParseDockerRef)', () => {
    const table: [string, string][] = [
      ['busybox', 'docker.io/library/busybox:latest'],
      ['busybox:latest', 'docker.io/library/busybox:latest'],
      [
        'busybox@sha256:e6693c20186f837fc393390135d8a598a96a833917917789d63766cab6c59582',
        'docker.io/library/busybox@sha256:e6693c20186f837fc393390135d8a598a96a833917917789d63766cab6c59582',
      ],
      ['library/busybox', 'docker.io/library/busybox:latest'],
      ['docker.io/busybox', 'docker.io/library/busybox:latest'],
      ['docker.io/library/busybox', 'docker.io/library/busybox:latest'],
      ['docker.io/busybox:latest', 'docker.io/library/busybox:latest'],
      ['library/busybox:latest', 'docker.io/library/busybox:latest'],
      ['gcr.io/library/busybox', 'gcr.io/library/busybox:latest'],
      ['busybox:1.36', 'docker.io/library/busybox:1.36'],
    ];
    for (const [input, expected] of table) {
      it(input.length > 40 ? `${input.slice(0, 40)}…` : input, () => {
        const ref = parseReference(input);
        const tagged = withDefaultTag(ref);
        assert.equal(formatReference(tagged), expected);
        assert.deepEqual(parseReference(expected), tagged);
      });
    }
    it('does not change the reference it is given', () => {
      const ref = parseReference('nginx');
      withDefaultTag(ref);
      assert.equal(ref.tag, undefined);
    });
  });

  describe('withTag, withDigest and trimReference (Docker WithTag/WithDigest/TrimNamed)', () => {
    it('combines name, tag and digest', () => {
      const name = parseReference('test.com:8000/foo');
      assert.equal(formatReference(withTag(name, 'tag4')), 'test.com:8000/foo:tag4');
      assert.equal(formatReference(withTag(name, 'TAG5')), 'test.com:8000/foo:TAG5');
      const canonical = withDigest(name, 'sha256:1234567890098765432112345667890098765');
      assert.equal(
        formatReference(canonical),
        'test.com:8000/foo@sha256:1234567890098765432112345667890098765',
      );
      assert.equal(
        formatReference(withTag(canonical, 'TAG5')),
        'test.com:8000/foo:TAG5@sha256:1234567890098765432112345667890098765',
      );
      assert.equal(formatReference(withTag(parseReference('foo'), 'tag2')), 'docker.io/library/foo:tag2');
      assert.equal(familiarName(withTag(parseReference('foo'), 'tag2')), 'foo:tag2');
    });
    it('rejects an invalid tag with ErrTagInvalidFormat', () => {
      const ref = parseReference('busybox');
      for (const tag of ['-foo', '', '.x', 'a/b', 't'.repeat(129)]) {
        expectReason(() => withTag(ref, tag), R.TagInvalidFormat, tag);
      }
    });
    it('rejects an invalid digest with ErrDigestInvalidFormat', () => {
      const ref = parseReference('busybox');
      for (const d of ['foo', 'sha256:abc', `sha256:${'g'.repeat(64)}`, `:${F64}`]) {
        expectReason(() => withDigest(ref, d), R.DigestInvalidFormat, d);
      }
    });
    it('trims tag and digest', () => {
      const ref: Reference = parseReference(`nginx:1@${SHA256_F}`);
      assert.deepEqual(trimReference(ref), { registry: 'docker.io', repository: 'library/nginx' });
    });
    it('parseRepository refuses a tag or digest', () => {
      expectReason(() => parseRepository('nginx:1.0'), R.ReferenceInvalidFormat, 'nginx:1.0');
      expectReason(() => parseRepository(`nginx@${SHA256_F}`), R.ReferenceInvalidFormat, 'digest');
    });
  });

  it('refuses long hostile input (the parse time is measured by scripts/bench, not here)', () => {
    for (const s of [
      'a'.repeat(50_000) + '!',
      'a-'.repeat(25_000) + '!',
      'ab.'.repeat(20_000) + '/x!',
      'x@' + 'a.'.repeat(25_000),
    ]) {
      assert.throws(() => parseReference(s), InvalidReferenceError);
    }
  });
});
