import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { entryHeader, tarStream } from '../src/bundle/index.ts';
import { encodeTar } from '../src/charts/tar.ts';

/**
 * The exact bytes of tar headers, pinned: bundles must be reproducible from one version of Lading
 * to the next (the same sources and SOURCE_DATE_EPOCH give the same bundle digest), and so must
 * packed charts. These digests were taken from the hand-written encoder before the codec moved
 * onto the `tar` package's `Header`/`Pax` (issue 11); a change here changes every bundle.
 */

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const HEX = '0123456789abcdef'.repeat(4);

describe('tar bytes are pinned (reproducible bundles across versions)', () => {
  const cases: Array<[string, string, number, number, 'file' | 'directory', string]> = [
    [
      'a short name',
      'SHA256SUMS',
      10,
      1700000000,
      'file',
      '86f8e0d120453ab3fc1628209c6a5fe60783213dba6c2530b3297dcfd0af86d7',
    ],
    [
      'a blob',
      `blobs/sha256/${HEX}`,
      12345678,
      0,
      'file',
      '63d5e35541c6128aee24fa4421db767bb799e1bd34774bda887017e6d6227c65',
    ],
    [
      'a directory',
      'blobs/',
      0,
      1700000000,
      'directory',
      '4bf808f5cbfff43bab4de8253a6f4f9e3f8ddf45fbf522a1c3d90f7cce90f592',
    ],
    [
      '99 bytes',
      'a'.repeat(99),
      1,
      1,
      'file',
      'c3afa12ea33c78e2bfdb43f7aeeff855f2bc72095113271738a5a5ec11be5b99',
    ],
    [
      '100 bytes, no slash',
      'a'.repeat(100),
      1,
      1,
      'file',
      '3a37232f4d642a4ca5c2e090a74140e9bde1b6c4a93ed74d7585e4952c7377ab',
    ],
    [
      '101 bytes (pax path)',
      'a'.repeat(101),
      1,
      1,
      'file',
      '6e60275d85218b34f614505925c60cf7f98abdd179922ffaa8f9df9a959a6b15',
    ],
    [
      '100 bytes with a slash (no ustar prefix)',
      `${'d'.repeat(40)}/${'f'.repeat(59)}`,
      7,
      5,
      'file',
      'b29e593dc11d5c96123c13f8f9b566fb7b65c990ec7fd5aec4ae54802915d1b0',
    ],
    [
      '121 bytes with a slash (pax, no ustar prefix)',
      `${'d'.repeat(60)}/${'f'.repeat(60)}`,
      7,
      5,
      'file',
      '13fb4aca21655c84fb1dd8da5d603e98e1da5ce9ca36c16151b9b47a8f710677',
    ],
    [
      'non-ASCII (pax path)',
      'images/café.txt',
      3,
      5,
      'file',
      '81768aea966cd87804c0e601b837fa425c0056f9a51ec3e3c3c413277cbc55cc',
    ],
    [
      'the largest octal mtime',
      'x/',
      0,
      8589934591,
      'directory',
      'f7eb72a805e1b4c3a6662b1a5127fb8bfd7a87ac44255291949f04e22787cf5f',
    ],
    [
      'the largest octal size',
      'big',
      0o77777777777,
      9,
      'file',
      '7e6b3e306d8b05c0e95ebb5fd5f2add0ca74dad3a75a51f44814d0f9d24d88fa',
    ],
    [
      '8 GiB (base-256 and pax size)',
      'bigger',
      0o77777777777 + 1,
      9,
      'file',
      'cc49c5834e8b48d6ec35102c1a93b2d6d24674807aff3f85f73a94554163bd28',
    ],
    [
      'a long path and 9 GiB (pax path and size)',
      `deep/${'p/'.repeat(150)}end`,
      9 * 2 ** 30 + 5,
      1234,
      'file',
      '709158e9fdee04ba7468c2b006188c7528f40f38e357ebe7b0ec96609484e373',
    ],
  ];
  for (const [what, path, size, mtime, type, digest] of cases) {
    it(`bundle header: ${what}`, () => {
      assert.equal(sha(entryHeader(path, size, mtime, type)), digest);
    });
  }

  it('a bundle tar stream', async () => {
    const chunks: Buffer[] = [];
    const entries = [
      { path: 'SHA256SUMS', size: 5, data: Buffer.from('hello') },
      { path: 'blobs', size: 0, data: Buffer.alloc(0), type: 'directory' as const },
      {
        path: `blobs/sha256/${HEX}`,
        size: 1000,
        data: async function* () {
          yield Buffer.alloc(1000, 7);
        },
      },
    ];
    for await (const c of tarStream(entries, { mtime: 1700000000 })) chunks.push(c);
    assert.equal(
      sha(Buffer.concat(chunks)),
      '1c60a9d42b4202c21a8d117ee452981be09edf4f78d81e4f1097c2fba6909ce8',
    );
  });

  it('a chart archive (files, a directory, a pax name, a link, a device, an executable)', () => {
    const chart = encodeTar([
      { path: 'mychart/', type: 'Directory' },
      { path: 'mychart/Chart.yaml', data: Buffer.from('name: x\n'), mtime: new Date(1700000000000) },
      { path: `mychart/templates/${'t'.repeat(120)}.yaml`, data: Buffer.from('k: v\n') },
      { path: 'mychart/link', type: 'SymbolicLink', linkpath: '../../etc/passwd' },
      { path: 'mychart/dev', type: 'CharacterDevice', devmaj: 1, devmin: 3 },
      { path: 'mychart/x.sh', data: Buffer.from('#!/bin/sh\n'), mode: 0o755 },
    ]);
    assert.equal(sha(chart), 'ce172e09259ec75f2ee0321806850c92349dd6f0b905ab5bbad6817332d8622b');
  });
});
