/**
 * @lading/core — the library under both CLIs. No CLI code here.
 */
export * from './bundle/index.ts';
export * from './charts/index.ts';
export * from './content/index.ts';
export * from './copy/index.ts';
export * from './digest/index.ts';
export * from './errors/index.ts';
export * from './layout/index.ts';
export * from './model/index.ts';
export * from './provenance/index.ts';
export * from './reference/index.ts';
export * from './registry/index.ts';
export * from './s3/index.ts';
export * from './util/index.ts';
