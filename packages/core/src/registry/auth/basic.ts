import type { Credential } from './credentials.ts';

/** `Authorization: Basic …` for a username and password (RFC 7617, UTF-8). */
export function basicAuthorization(cred: Pick<Credential, 'username' | 'password'>): string {
  return `Basic ${Buffer.from(`${cred.username ?? ''}:${cred.password ?? ''}`, 'utf8').toString('base64')}`;
}

/** Whether a credential can be sent as Basic auth. */
export function hasPassword(cred: Credential | undefined): cred is Credential & { username: string } {
  return (
    !!cred && typeof cred.username === 'string' && cred.username.length > 0 && cred.password !== undefined
  );
}
