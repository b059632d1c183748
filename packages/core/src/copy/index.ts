export * from './copy.ts';
export * from './errors.ts';
export * from './events.ts';
export { type CopyGraphOptions, copyGraph, DEFAULT_CONCURRENCY } from './graph.ts';
