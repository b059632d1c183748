#!/usr/bin/env node
// Entry point of the CLI: oclif finds the commands in ../dist/commands (built by scripts/setup).
import { execute } from '@oclif/core';

await execute({ dir: import.meta.url });
