/**
 * Link-header pagination (RFC 8288), as Distribution uses it for tag lists and the catalog:
 * `Link: </v2/name/tags/list?last=x&n=100>; rel="next"`.
 */
export function nextLink(link: string | string[] | undefined, current: URL): URL | undefined {
  if (!link) return undefined;
  const values = Array.isArray(link) ? link : [link];
  for (const value of values) {
    for (const part of value.split(/,(?=\s*<)/)) {
      const m = /^\s*<([^>]*)>(.*)$/.exec(part);
      if (!m) continue;
      const params = m[2] ?? '';
      if (/;\s*rel\s*=\s*"?([^";]*\s)?next(\s[^";]*)?"?\s*(;|$)/i.test(params)) {
        try {
          return new URL(m[1] as string, current);
        } catch {
          return undefined;
        }
      }
    }
  }
  return undefined;
}
