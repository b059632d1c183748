export * from './helm.ts';
export * from './plan.ts';
export * from './relocation.ts';
export * from './run.ts';
