export * from './client.ts';
export * from './errors.ts';
export * from './fetch.ts';
export * from './head.ts';
export * from './meta.ts';
export * from './publish.ts';
export * from './source.ts';
export * from './url.ts';
