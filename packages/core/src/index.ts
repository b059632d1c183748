/**
 * @lading/core — the library under both CLIs. No CLI code here.
 */
export * from './content/index.ts';
export * from './digest/index.ts';
export * from './errors/index.ts';
export * from './model/index.ts';
export * from './util/index.ts';
