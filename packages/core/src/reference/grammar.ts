/**
 * The grammar of image references, as Docker's reference library (github.com/distribution/reference)
 * defines it:
 *
 * ```
 * reference        := name [ ":" tag ] [ "@" digest ]
 * name             := [ domain "/" ] path
 * domain           := host [ ":" port ]
 * host             := domain-name | "[" IPv6 "]"     ; IPv4 is a domain-name made of digits
 * domain-name      := domain-component ( "." domain-component )*
 * domain-component := [a-zA-Z0-9] | [a-zA-Z0-9] [a-zA-Z0-9-]* [a-zA-Z0-9]
 * port             := [0-9]+
 * path             := path-component ( "/" path-component )*
 * path-component   := [a-z0-9]+ ( separator [a-z0-9]+ )*
 * separator        := "." | "_" | "__" | "-"+
 * tag              := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
 * digest           := algorithm ":" hex{32,}
 * algorithm        := [A-Za-z][A-Za-z0-9]* ( [-_+.] [A-Za-z][A-Za-z0-9]* )*
 * identifier       := [a-f0-9]{64}
 * ```
 *
 * The patterns are composed so that JavaScript's backtracking engine picks the same submatches as
 * Go's leftmost-first RE2 (an optional domain is tried before "no domain"). None of them nests
 * ambiguous quantifiers, so matching stays linear in practice.
 */

const group = (...parts: string[]): string => `(?:${parts.join('')})`;
const maybe = (...parts: string[]): string => `${group(...parts)}?`;
const repeated = (...parts: string[]): string => `${group(...parts)}*`;
const capture = (...parts: string[]): string => `(${parts.join('')})`;
const whole = (...parts: string[]): RegExp => new RegExp(`^${parts.join('')}$`);

// --- path (the repository name without its registry) ------------------------------------------
const lowerAlnum = '[a-z0-9]+';
const separator = group('[._]', '|', '__', '|', '-+');
const pathComponent = lowerAlnum + repeated(separator, lowerAlnum);
const path = pathComponent + repeated('/', pathComponent);

// --- domain (registry host and optional port) --------------------------------------------------
const domainComponent = group('[a-zA-Z0-9]', '|', '[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]');
const domainName = domainComponent + repeated('\\.', domainComponent);
/** Bracketed IPv6 literal; zone identifiers and embedded IPv4 are deliberately not accepted. */
const ipv6 = '\\[[a-fA-F0-9:]+\\]';
const port = maybe(':[0-9]+');
const domain = group(domainName, '|', ipv6) + port;

// --- tag and digest ----------------------------------------------------------------------------
const tag = '[\\w][\\w.-]{0,127}';
const algorithmComponent = '[A-Za-z][A-Za-z0-9]*';
const digest = algorithmComponent + repeated('[-_+.]', algorithmComponent) + ':[0-9a-fA-F]{32,}';

const name = maybe(domain, '/') + path;

/** Whole reference; groups: 1 name, 2 tag, 3 digest. */
export const REFERENCE_RE: RegExp = whole(
  capture(name),
  maybe(':', capture(tag)),
  maybe('@', capture(digest)),
);

/** A name alone; groups: 1 domain (may be undefined), 2 path. */
export const NAME_RE: RegExp = whole(maybe(capture(domain), '/'), capture(path));

/** A domain alone (host and optional port). */
export const DOMAIN_RE: RegExp = whole(domain);

/** A path alone (the repository without registry). */
export const PATH_RE: RegExp = whole(path);

/** A tag alone. */
export const TAG_RE: RegExp = whole(tag);

/** A digest as the reference grammar accepts it (syntax only, any algorithm). */
export const DIGEST_SYNTAX_RE: RegExp = whole(digest);

/** A bare 64-hex identifier (an image ID), which is never accepted as a name. */
export const IDENTIFIER_RE: RegExp = /^[a-f0-9]{64}$/;

/** Maximum length of the repository path (excluding the registry), as in Docker. */
export const REPOSITORY_NAME_MAX_LENGTH = 255;
