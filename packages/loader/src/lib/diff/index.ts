export * from './compare.ts';
export * from './model.ts';
export * from './open.ts';
export * from './render.ts';
