export * from './digest.ts';
export * from './verify.ts';
