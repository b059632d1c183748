import {
  defaultKeychain,
  type Keychain,
  parseReference,
  type Reference,
  Registry,
  type RegistryRepository,
} from '@lading/core';

/**
 * How `lading-build` reaches source registries: one `Registry` (connection pool, token cache) per
 * host, with the TLS trust and plain-HTTP hosts the user asked for. Credentials come from the
 * containers auth.json and the Docker config (never from the spec).
 */
export interface SourceOptions {
  /** PEM files of extra CAs to trust (`--ca-file`, repeatable). */
  caFiles?: string[];
  /** Skip TLS verification for every source (`--insecure`). */
  insecure?: boolean;
  /** Hosts (`host[:port]`) spoken to over plain HTTP (`--plain-http`). */
  plainHttp?: string[];
  /** Where credentials come from (default: auth.json, then the Docker config). */
  keychain?: Keychain;
}

export class SourceRegistries {
  private readonly opts: SourceOptions;
  private readonly registries = new Map<string, Registry>();
  private readonly keychain: Keychain;

  constructor(opts: SourceOptions = {}) {
    this.opts = opts;
    this.keychain = opts.keychain ?? defaultKeychain();
  }

  registry(host: string): Registry {
    let r = this.registries.get(host);
    if (!r) {
      const plain = (this.opts.plainHttp ?? []).includes(host);
      r = new Registry(host, {
        keychain: this.keychain,
        ...(plain ? { plainHttp: true } : {}),
        ...(this.opts.caFiles && this.opts.caFiles.length > 0 ? { caFile: this.opts.caFiles } : {}),
        ...(this.opts.insecure ? { insecure: true } : {}),
      });
      this.registries.set(host, r);
    }
    return r;
  }

  /** The repository an image reference lives in, and what to resolve there (tag or digest). */
  open(ref: string | Reference): { repository: RegistryRepository; reference: string; parsed: Reference } {
    const parsed = typeof ref === 'string' ? parseReference(ref) : ref;
    const repository = this.registry(parsed.registry).repository(parsed.repository);
    const reference = parsed.digest ?? parsed.tag ?? 'latest';
    return { repository, reference, parsed };
  }

  async close(): Promise<void> {
    await Promise.all([...this.registries.values()].map((r) => r.close()));
    this.registries.clear();
  }
}
