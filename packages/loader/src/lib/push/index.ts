export * from './credentials.ts';
export * from './errors.ts';
export * from './mounts.ts';
export * from './plan.ts';
export * from './push.ts';
