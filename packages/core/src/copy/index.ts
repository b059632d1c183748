export * from './copy.ts';
export * from './errors.ts';
export * from './events.ts';
export { type CopyGraphOptions, copyGraph, copyGraphs, DEFAULT_CONCURRENCY, type GraphRun } from './graph.ts';
