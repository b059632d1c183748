export * from './base-command.ts';
export * from './progress.ts';
