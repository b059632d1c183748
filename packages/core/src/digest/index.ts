export * from './digest.ts';
export * from './hash-pool.ts';
export * from './verify.ts';
