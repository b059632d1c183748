export * from './content.ts';
export * from './read.ts';
