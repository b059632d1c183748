export * from './base-command.ts';
export * from './help-text.ts';
export * from './progress.ts';
