/**
 * `WWW-Authenticate` parsing (RFC 9110 §11.6.1): one or more challenges, each a scheme and either
 * auth-params (`key=value` or `key="quoted, \"escaped\""`) or a token68.
 */
export interface Challenge {
  /** Lower-cased scheme: `basic`, `bearer`, … */
  scheme: string;
  /** Parameters with lower-cased keys (`realm`, `service`, `scope`, `error`). */
  params: Record<string, string>;
}

const TOKEN = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;

/** Parse every challenge in a header value (or list of values). Never throws. */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  if (header === undefined) return [];
  if (Array.isArray(header)) return header.flatMap((h) => parseChallenges(h));
  const s = header;
  const out: Challenge[] = [];
  let i = 0;
  const skipWs = () => {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++;
  };
  const readToken = (): string => {
    const start = i;
    while (i < s.length && TOKEN.test(s[i] as string)) i++;
    return s.slice(start, i);
  };
  const readBare = (): string => {
    const start = i;
    while (i < s.length && s[i] !== ',' && s[i] !== ' ' && s[i] !== '\t') i++;
    return s.slice(start, i);
  };
  const readQuoted = (): string => {
    // s[i] === '"'
    i++;
    let v = '';
    while (i < s.length && s[i] !== '"') {
      if (s[i] === '\\' && i + 1 < s.length) i++;
      v += s[i];
      i++;
    }
    i++; // closing quote
    return v;
  };
  let current: Challenge | undefined;
  while (i < s.length) {
    skipWs();
    if (s[i] === ',') {
      i++;
      continue;
    }
    const start = i;
    const tok = readToken();
    if (!tok) {
      i++; // skip garbage
      continue;
    }
    skipWs();
    if (s[i] === '=' && current) {
      // auth-param key=value (or token68 with trailing '=' — rare, treat as param)
      i++;
      skipWs();
      const value = s[i] === '"' ? readQuoted() : readBare();
      current.params[tok.toLowerCase()] = value;
      continue;
    }
    // A new scheme.
    current = { scheme: tok.toLowerCase(), params: {} };
    out.push(current);
    // A token68 after the scheme (e.g. `Negotiate abc==`) is kept as params.token68.
    skipWs();
    const save = i;
    const t68 = /^[A-Za-z0-9\-._~+/]+=*/.exec(s.slice(i));
    if (t68 && !/^[A-Za-z0-9\-._~+/]+\s*=\s*[^=]/.test(s.slice(i)) && t68[0].length > 0) {
      const after = s.slice(i + t68[0].length).trimStart();
      if (after === '' || after.startsWith(',')) {
        current.params.token68 = t68[0];
        i += t68[0].length;
      } else {
        i = save;
      }
    }
    if (i === start) i++;
  }
  return out;
}

/** The first challenge of the given scheme, if any. */
export function findChallenge(challenges: Challenge[], scheme: string): Challenge | undefined {
  return challenges.find((c) => c.scheme === scheme.toLowerCase());
}
