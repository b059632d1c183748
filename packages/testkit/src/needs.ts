/**
 * A test that needs something outside the repository (a Debian tool, the built CLIs): on a
 * developer's machine it is skipped when that is missing, and the summary of `scripts/test` counts
 * it as skipped. In CI (`CI` set to anything but `false` or `0`) a missing tool fails instead:
 * there `scripts/setup` must have installed everything, and a skipped real-tool test is not a pass.
 */
export function inCI(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = env.CI?.trim().toLowerCase();
  return v !== undefined && v !== '' && v !== 'false' && v !== '0';
}

/** Skips the running test or hook unless `present`; throws in CI. `what` names it and the fix. */
export function needs(ctx: { skip(): void }, present: boolean, what: string): void {
  if (present) return;
  if (inCI()) throw new Error(`${what} is missing; in CI this fails instead of skipping (run scripts/setup)`);
  ctx.skip();
}
