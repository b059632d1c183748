/** The public entry of bundle verification; the parts live in `verify/` (see `verify/index.ts`). */
export * from './verify/index.ts';
