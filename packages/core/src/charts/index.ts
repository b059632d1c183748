export * from './archive.ts';
export * from './discover.ts';
export * from './errors.ts';
export * from './helmignore.ts';
export * from './metadata.ts';
export * from './oci.ts';
export * from './pack.ts';
export * from './repo-index.ts';
