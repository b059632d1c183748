// oclif loads hooks from the CLI's own package: the shared one lives in @lading/cli.
export { default } from '@lading/cli/not-found';
