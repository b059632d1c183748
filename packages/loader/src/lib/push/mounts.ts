import type { Readable } from 'node:stream';
import {
  type CallOptions,
  type Descriptor,
  isManifestOrIndexType,
  type Mounter,
  type ReferencePusher,
  type RegistryRepository,
  type Target,
} from '@lading/core';

/**
 * Which repositories of the target registry hold (or are receiving) which blob, in this run.
 * A blob needed in a second repository is mounted from the first instead of being sent again;
 * a mount waits for the push it mounts from, so a shared layer crosses the wire once.
 */
export class MountBook {
  private readonly where = new Map<string, Map<string, Promise<boolean>>>();

  /** Record that `repository` holds `digest` (true) or will once `pending` resolves true. */
  note(digest: string, repository: string, pending: Promise<boolean> = Promise.resolve(true)): void {
    let m = this.where.get(digest);
    if (!m) {
      m = new Map();
      this.where.set(digest, m);
    }
    const prev = m.get(repository);
    // a known presence is never replaced by a pending one
    m.set(repository, prev ? prev.then((ok) => ok || pending) : pending);
  }

  /** Repositories to try mounting `digest` from, other than `except`. */
  candidates(digest: string, except: string): string[] {
    return [...(this.where.get(digest)?.keys() ?? [])].filter((r) => r !== except);
  }

  /** Resolves true when `repository` holds `digest` (waits for a push in flight). */
  async present(digest: string, repository: string): Promise<boolean> {
    const p = this.where.get(digest)?.get(repository);
    return p ? p : false;
  }
}

/**
 * A registry repository as the copy destination, reporting to a MountBook: HEAD hits and
 * finished pushes make a repository a mount source; `mount` waits for a push in flight.
 */
export class BookedRepository implements Target, Mounter, ReferencePusher {
  readonly repo: RegistryRepository;
  private readonly book: MountBook;

  constructor(repo: RegistryRepository, book: MountBook) {
    this.repo = repo;
    this.book = book;
  }

  get name(): string {
    return this.repo.name;
  }

  resolve(reference: string, opts?: CallOptions): Promise<Descriptor> {
    return this.repo.resolve(reference, opts);
  }

  fetch(desc: Descriptor, opts?: CallOptions): Promise<Readable> {
    return this.repo.fetch(desc, opts);
  }

  tag(desc: Descriptor, reference: string, opts?: CallOptions): Promise<void> {
    return this.repo.tag(desc, reference, opts);
  }

  pushReference(desc: Descriptor, content: Readable, reference: string, opts?: CallOptions): Promise<void> {
    return this.repo.pushReference(desc, content, reference, opts);
  }

  async exists(desc: Descriptor, opts?: CallOptions): Promise<boolean> {
    const ok = await this.repo.exists(desc, opts);
    if (ok && !isManifestOrIndexType(desc.mediaType)) this.book.note(desc.digest, this.repo.name);
    return ok;
  }

  async push(desc: Descriptor, content: Readable, opts?: CallOptions): Promise<void> {
    if (isManifestOrIndexType(desc.mediaType)) return this.repo.push(desc, content, opts);
    const p = this.repo.push(desc, content, opts);
    this.book.note(
      desc.digest,
      this.repo.name,
      p.then(
        () => true,
        () => false,
      ),
    );
    await p;
  }

  async mount(desc: Descriptor, fromRepository: string, opts?: CallOptions): Promise<boolean> {
    if (!(await this.book.present(desc.digest, fromRepository))) return false;
    const ok = await this.repo.mount(desc, fromRepository, opts);
    if (ok) this.book.note(desc.digest, this.repo.name);
    return ok;
  }
}
