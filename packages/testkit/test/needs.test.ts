import assert from 'node:assert/strict';
import { inCI, needs } from '../src/needs.ts';

describe('needs: a missing tool skips locally and fails in CI', () => {
  const saved = process.env.CI;
  afterEach(() => {
    if (saved === undefined) delete process.env.CI;
    else process.env.CI = saved;
  });

  it('reads CI as CI systems set it', () => {
    for (const v of ['true', '1', 'yes', 'TRUE']) assert.equal(inCI({ CI: v }), true, v);
    for (const v of [undefined, '', 'false', '0'])
      assert.equal(inCI(v === undefined ? {} : { CI: v }), false, v);
  });

  it('skips without CI, throws naming the tool in CI, does nothing when present', () => {
    let skipped = 0;
    const ctx = { skip: () => void skipped++ };
    delete process.env.CI;
    needs(ctx, true, 'skopeo');
    assert.equal(skipped, 0);
    needs(ctx, false, 'skopeo');
    assert.equal(skipped, 1);
    process.env.CI = 'true';
    assert.throws(() => needs(ctx, false, 'skopeo'), /skopeo is missing.*scripts\/setup/);
    assert.equal(skipped, 1);
  });
});
