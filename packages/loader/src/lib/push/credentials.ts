import type { Readable } from 'node:stream';
import type { Credential } from '@lading/core';
import { PushCredentialsError } from './errors.ts';

/** Environment variables with registry credentials (used when no flag gives them). */
export const USERNAME_ENV = 'LADING_REGISTRY_USERNAME';
export const PASSWORD_ENV = 'LADING_REGISTRY_PASSWORD';

export interface CredentialInput {
  username?: string | undefined;
  passwordStdin?: boolean | undefined;
  env?: NodeJS.ProcessEnv;
  stdin?: Readable;
}

/** Read a password from stdin: the whole input, one trailing newline (LF or CRLF) removed. */
export async function readPasswordStdin(stdin: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stdin) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(String(c)));
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

/**
 * Explicit credentials for the target registry, or undefined to use the keychain (containers
 * auth.json / REGISTRY_AUTH_FILE, then the Docker config). `--username` and `--password-stdin`
 * win over LADING_REGISTRY_USERNAME / LADING_REGISTRY_PASSWORD; each half may come from either.
 */
export async function resolveCredentials(input: CredentialInput): Promise<Credential | undefined> {
  const env = input.env ?? process.env;
  const username = input.username ?? (env[USERNAME_ENV] || undefined);
  let password: string | undefined;
  if (input.passwordStdin) {
    if (!input.stdin) throw new PushCredentialsError('--password-stdin given but there is no stdin');
    if ((input.stdin as { isTTY?: boolean }).isTTY) {
      throw new PushCredentialsError('--password-stdin reads the password from a pipe, not a terminal', {
        hint: `e.g. printf %s "$PASSWORD" | lading-load push … --username U --password-stdin, or set ${PASSWORD_ENV}`,
      });
    }
    password = await readPasswordStdin(input.stdin);
    if (!password) throw new PushCredentialsError('--password-stdin: stdin was empty');
  } else {
    password = env[PASSWORD_ENV] || undefined;
  }
  if (username === undefined && password === undefined) return undefined;
  if (username === undefined) {
    throw new PushCredentialsError('a password was given without a username', {
      hint: `pass --username (or set ${USERNAME_ENV})`,
    });
  }
  if (password === undefined) {
    throw new PushCredentialsError(`--username ${username} given without a password`, {
      hint: `add --password-stdin and pipe the password in, or set ${PASSWORD_ENV}`,
    });
  }
  return { username, password };
}
