export * from './descriptor.ts';
export * from './manifest.ts';
export * from './media-types.ts';
export * from './platform.ts';
export * from './walk.ts';
