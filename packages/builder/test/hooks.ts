// Mocha root hooks (.mocharc.json "require"): every builder test, in-process or through the CLI,
// runs without the developer's or CI's credential store and proxy settings.
import { isolateProcessEnv } from '@lading/testkit';

export const mochaHooks = {
  beforeAll(): void {
    isolateProcessEnv();
  },
};
