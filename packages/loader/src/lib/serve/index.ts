export * from './catalog.ts';
export * from './server.ts';
export * from './verify-first.ts';
