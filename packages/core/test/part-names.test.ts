import assert from 'node:assert/strict';
import { collectParts, parsePartName } from '../src/bundle/index.ts';

describe('split part names: one rule for files, folders and S3 keys', () => {
  it('a part is NAME.NNN with three or more digits', () => {
    assert.deepEqual(parsePartName('shop.tar.000'), { base: 'shop.tar', index: 0, width: 3 });
    assert.deepEqual(parsePartName('a/b/shop.tar.1024'), { base: 'a/b/shop.tar', index: 1024, width: 4 });
    assert.equal(parsePartName('shop.tar.00'), undefined);
    assert.equal(parsePartName('shop.tar'), undefined);
    assert.equal(parsePartName('shop.tar.sha256'), undefined);
  });

  it('collects the run from 0, names the gap and what lies past it, ignores other bundles and widths', () => {
    const names = [
      'shop.tar.002',
      'shop.tar.000',
      'shop.tar.001',
      'shop.tar.004',
      'shop.tar.0003',
      'other.tar.003',
      'shop.tar.sha256',
    ];
    assert.deepEqual(collectParts('shop.tar', 3, names), {
      parts: ['shop.tar.000', 'shop.tar.001', 'shop.tar.002'],
      missing: ['shop.tar.003'],
      afterGap: ['shop.tar.004'],
    });
    assert.deepEqual(collectParts('shop.tar', 3, []), { parts: [], missing: [], afterGap: [] });
  });
});
