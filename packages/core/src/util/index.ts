export * from './atomic-file.ts';
export * from './coalesce.ts';
export * from './format.ts';
export * from './limiter.ts';
export * from './retry.ts';
