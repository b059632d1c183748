#!/usr/bin/env node
// Entry point of the CLI: oclif finds the commands in ../dist/commands (built by scripts/setup).
// First, re-exec with the runtime flags of @lading/cli/runtime (bounded memory) when they are missing.
import { exitOnBrokenPipe, relaunchWithRuntimeFlags } from '@lading/cli/runtime';

relaunchWithRuntimeFlags(import.meta.url);
exitOnBrokenPipe();
const { execute } = await import('@oclif/core');
await execute({ dir: import.meta.url });
