/** The refusal check shared by the tamper matrix and the bundle attacks: verify and push, both must refuse. */
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { RegistryServer } from '@lading/testkit';
import { log } from '../../bench-src/lib/common.ts';
import { lastError } from '../lib/proc.ts';
import { catalog } from '../lib/registry-state.ts';
import type { Case } from '../lib/report.ts';
import { push, verify } from './context.ts';

export type RefusalCheck = (
  id: string,
  what: string,
  bundle: string,
  pub: string,
  targets: string[],
  cwd: string,
) => Promise<Case>;

/**
 * verify BUNDLE and push it into `reg` from `cwd`: both must exit 3, nothing pushed, none of `targets`
 * (relative to `cwd`) written. A case that pushed something empties the registry for the next one.
 */
export function refusalCheck(reg: RegistryServer): RefusalCheck {
  return async (id, what, bundle, pub, targets, cwd) => {
    const v = await verify(bundle, pub, cwd);
    const p = await push(bundle, reg.host, pub, { cwd });
    const pushed = await catalog(reg.url);
    const escaped = targets.filter((t) => existsSync(resolve(cwd, t)));
    const refused = (c: number): boolean => c === 3;
    const ok = refused(v.code) && refused(p.code) && pushed.length === 0 && escaped.length === 0;
    const c: Case = {
      id,
      what,
      verifyExit: v.code,
      pushExit: p.code,
      pushed,
      escaped,
      expected: 'exit 3 from verify and push, nothing pushed, nothing outside',
      ok,
      message: lastError(v),
    };
    log(
      `${id}: verify ${v.code}, push ${p.code}, pushed ${pushed.length}, escaped ${escaped.length} ${ok ? 'ok' : 'PROBLEM'}`,
    );
    if (pushed.length) {
      // start over with an empty registry for the next case
      await rm(join(reg.dataDir, 'docker'), { recursive: true, force: true });
    }
    return c;
  };
}
