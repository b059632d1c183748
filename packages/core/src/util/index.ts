export * from './atomic-file.ts';
export * from './closest.ts';
export * from './fan-out.ts';
export * from './format.ts';
export * from './limiter.ts';
export * from './retry.ts';
export * from './singleflight.ts';
export * from './write-gatherer.ts';
