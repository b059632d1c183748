export * from './format.ts';
export * from './limiter.ts';
