export * from './errors.ts';
export * from './layout.ts';
