/**
 * The chunk directory of an out-of-order metric series: which sealed chunks may hold a point with
 * a given (step, timestamp). Chunks are in arrival order, so once a series arrived out of order
 * in both step and timestamp, the ranges in the chunk summaries overlap and no longer tell which
 * chunks to read. The directory keeps, per sealed chunk, a few "fragments": intervals of
 * (step, timestamp) keys in lexicographic order that together cover the chunk's points (cut at
 * the gaps between its keys, so shuffled blocks of steps give exact intervals). Fragments live on
 * pages that partition the key space, like the leaves of a B-tree: a page holds every fragment
 * that overlaps its key range, the series document holds the pages' lower bounds (one entry per
 * page), and a page that grows past its capacity splits at a median key. Sealed chunks never
 * change, so a page is written only when a chunk seals; finding the chunks that may hold a batch's
 * points reads the pages its keys fall on, whatever the size of the series.
 */

/** Default fragments per directory page before it splits (a page is ~10-15 KiB of JSON). */
export const DEFAULT_DIR_PAGE_ENTRIES = 256;

/** At most this many fragments describe one chunk; closer fragments are merged beyond that. */
export const MAX_CHUNK_FRAGMENTS = 8;

/** Numbers per fragment in a page: seq, step_lo, ts_lo, step_hi, ts_hi. */
const F = 5;

/** One page of a series' chunk directory, as stored. */
export interface MetricChunkDirDoc {
  [field: string]: unknown;
  readonly series: string;
  readonly page: number;
  /** Fragments flattened as [seq, step_lo, ts_lo, step_hi, ts_hi, ...]; keys inclusive. */
  readonly entries: readonly number[];
}

/** Where a series' directory stands: page ids in key order and the lower bounds of all but the first. */
export interface ChunkDirState {
  readonly pages: readonly number[];
  /** Lower bound [step, ts] of pages[1..], flattened; the first page has no lower bound. */
  readonly bounds: readonly number[];
}

/** Reads a stored directory page by id (a projection passes its writer's get). */
export type DirPageLoader = (page: number) => Promise<MetricChunkDirDoc | undefined>;

/** Id of a directory page; `p` keeps page ids apart from chunk ids (which are zero-padded digits). */
export function metricChunkDirId(seriesId: string, page: number): string {
  return `${seriesId}#p${page}`;
}

/** Lexicographic order of (step, timestamp) keys. */
function cmpKey(s1: number, t1: number, s2: number, t2: number): number {
  return s1 < s2 ? -1 : s1 > s2 ? 1 : t1 < t2 ? -1 : t1 > t2 ? 1 : 0;
}

function median(xs: number[]): number {
  if (xs.length === 0) return 0;
  xs.sort((a, b) => a - b);
  return xs[xs.length >>> 1]!;
}

/**
 * The fragments of a chunk, flattened as [step_lo, ts_lo, step_hi, ts_hi, ...] in key order: its
 * points sorted by key and cut where the next key is unusually far (a step gap over twice the
 * median step gap, or at one step, a timestamp gap over twice the median), at most `max - 1` cuts,
 * the widest first. Contiguous blocks of steps thus give one fragment each, with nothing between.
 */
export function chunkFragments(
  steps: ArrayLike<number>,
  timestamps: ArrayLike<number>,
  n: number,
  max = MAX_CHUNK_FRAGMENTS,
): number[] {
  if (n === 0) return [];
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) =>
    cmpKey(steps[a]!, timestamps[a]!, steps[b]!, timestamps[b]!),
  );
  const s = (k: number): number => steps[order[k]!]!;
  const t = (k: number): number => timestamps[order[k]!]!;
  const stepGaps: number[] = [];
  const tsGaps: number[] = [];
  for (let k = 0; k + 1 < n; k++) {
    if (s(k + 1) > s(k)) stepGaps.push(s(k + 1) - s(k));
    else tsGaps.push(t(k + 1) - t(k));
  }
  const stepLimit = 2 * median([...stepGaps]);
  const tsLimit = 2 * median([...tsGaps]);
  // cut after sorted position k; wider gaps first: any step gap before a gap within one step
  const cuts: number[] = [];
  for (let k = 0; k + 1 < n; k++) {
    const ds = s(k + 1) - s(k);
    if (ds > 0 ? ds > stepLimit : t(k + 1) - t(k) > tsLimit) cuts.push(k);
  }
  cuts.sort((a, b) => {
    const da = s(a + 1) - s(a);
    const db = s(b + 1) - s(b);
    return db - da || t(b + 1) - t(b) - (t(a + 1) - t(a)) || a - b;
  });
  const kept = cuts.slice(0, max - 1).sort((a, b) => a - b);
  const out: number[] = [];
  let from = 0;
  for (const k of [...kept, n - 1]) {
    out.push(s(from), t(from), s(k), t(k));
    from = k + 1;
  }
  return out;
}

/**
 * A working copy of a series' directory for one append: pages are loaded on demand and copied
 * before they change (loaded documents may be shared and frozen).
 */
export class ChunkDirectory {
  private readonly pageIds: number[];
  private readonly bounds: number[];
  private readonly entries = new Map<number, number[]>();
  private readonly dirty = new Set<number>();
  private readonly loaded = new Set<number>();

  private constructor(
    private readonly seriesId: string,
    state: ChunkDirState,
    private readonly load: DirPageLoader,
    private readonly capacity: number,
  ) {
    this.pageIds = [...state.pages];
    this.bounds = [...state.bounds];
  }

  /** The stored directory of a series. */
  static of(
    seriesId: string,
    state: ChunkDirState,
    load: DirPageLoader,
    capacity = DEFAULT_DIR_PAGE_ENTRIES,
  ): ChunkDirectory {
    return new ChunkDirectory(seriesId, state, load, capacity);
  }

  /** A new directory: one empty page covering every key. */
  static empty(
    seriesId: string,
    load: DirPageLoader,
    capacity = DEFAULT_DIR_PAGE_ENTRIES,
  ): ChunkDirectory {
    const dir = new ChunkDirectory(seriesId, { pages: [0], bounds: [] }, load, capacity);
    dir.entries.set(0, []);
    dir.dirty.add(0);
    return dir;
  }

  /** Page ids and bounds, for the series document. */
  state(): ChunkDirState {
    return { pages: [...this.pageIds], bounds: [...this.bounds] };
  }

  /** Directory pages read from storage so far (tests count them). */
  get pagesLoaded(): number {
    return this.loaded.size;
  }

  /** Position (in key order) of the page whose range holds the key. */
  private positionOf(step: number, ts: number): number {
    // the number of lower bounds <= key
    let lo = 0;
    let hi = this.pageIds.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cmpKey(this.bounds[2 * mid]!, this.bounds[2 * mid + 1]!, step, ts) <= 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private async page(position: number): Promise<number[]> {
    const id = this.pageIds[position]!;
    let list = this.entries.get(id);
    if (list === undefined) {
      const doc = await this.load(id);
      if (doc === undefined) throw new Error(`metric chunk directory page ${id} is missing`);
      this.loaded.add(id);
      list = [...doc.entries];
      this.entries.set(id, list);
    }
    return list;
  }

  /**
   * The sealed chunks that may hold any of `keys` (flattened [step, ts] pairs, sorted by key):
   * reads only the pages the keys fall on, and per page tests each fragment against the keys by
   * binary search.
   */
  async candidates(keys: readonly number[]): Promise<Set<number>> {
    const out = new Set<number>();
    const n = keys.length / 2;
    let i = 0;
    while (i < n) {
      const position = this.positionOf(keys[2 * i]!, keys[2 * i + 1]!);
      // the keys on this page: up to the next page's lower bound
      let j = i + 1;
      if (position < this.pageIds.length - 1) {
        const bs = this.bounds[2 * position]!;
        const bt = this.bounds[2 * position + 1]!;
        while (j < n && cmpKey(keys[2 * j]!, keys[2 * j + 1]!, bs, bt) < 0) j++;
      } else {
        j = n;
      }
      const list = await this.page(position);
      for (let e = 0; e < list.length; e += F) {
        const seq = list[e]!;
        if (out.has(seq)) continue;
        // first key in [i, j) that is >= the fragment's low end
        let lo = i;
        let hi = j;
        while (lo < hi) {
          const mid = (lo + hi) >>> 1;
          if (cmpKey(keys[2 * mid]!, keys[2 * mid + 1]!, list[e + 1]!, list[e + 2]!) < 0)
            lo = mid + 1;
          else hi = mid;
        }
        if (lo < j && cmpKey(keys[2 * lo]!, keys[2 * lo + 1]!, list[e + 3]!, list[e + 4]!) <= 0) {
          out.add(seq);
        }
      }
      i = j;
    }
    return out;
  }

  /**
   * The chunks with a fragment overlapping the key range [(stepLo, tsLo), (stepHi, tsHi)] (a read
   * of the points within a step range).
   */
  async overlapping(
    stepLo: number,
    tsLo: number,
    stepHi: number,
    tsHi: number,
  ): Promise<Set<number>> {
    const out = new Set<number>();
    const last = this.positionOf(stepHi, tsHi);
    for (let position = this.positionOf(stepLo, tsLo); position <= last; position++) {
      const list = await this.page(position);
      for (let e = 0; e < list.length; e += F) {
        if (
          cmpKey(list[e + 1]!, list[e + 2]!, stepHi, tsHi) <= 0 &&
          cmpKey(list[e + 3]!, list[e + 4]!, stepLo, tsLo) >= 0
        ) {
          out.add(list[e]!);
        }
      }
    }
    return out;
  }

  /** Records a sealed chunk's fragments (from `chunkFragments`) on every page they overlap. */
  async add(seq: number, fragments: readonly number[]): Promise<void> {
    const touched = new Set<number>();
    for (let f = 0; f < fragments.length; f += 4) {
      const [sl, tl, sh, th] = [
        fragments[f]!,
        fragments[f + 1]!,
        fragments[f + 2]!,
        fragments[f + 3]!,
      ];
      const last = this.positionOf(sh, th);
      for (let position = this.positionOf(sl, tl); position <= last; position++) {
        const list = await this.page(position);
        list.push(seq, sl, tl, sh, th);
        const id = this.pageIds[position]!;
        this.dirty.add(id);
        touched.add(id);
      }
    }
    for (const id of touched) {
      if (this.entries.get(id)!.length > this.capacity * F) this.split(id);
    }
  }

  /**
   * Splits a full page at the median low key of its fragments, if that leaves both halves
   * smaller (fragments spanning the cut go to both); a page of fragments that all overlap stays
   * whole.
   */
  private split(id: number): void {
    const list = this.entries.get(id)!;
    const position = this.pageIds.indexOf(id);
    const count = list.length / F;
    const lows = Array.from({ length: count }, (_, k) => k).sort((a, b) =>
      cmpKey(list[a * F + 1]!, list[a * F + 2]!, list[b * F + 1]!, list[b * F + 2]!),
    );
    const hasLower = position > 0;
    for (const pick of [count >>> 1, count >>> 2, (3 * count) >>> 2]) {
      const k = lows[pick]!;
      const ms = list[k * F + 1]!;
      const mt = list[k * F + 2]!;
      // the cut must lie strictly inside the page's range
      if (
        hasLower &&
        cmpKey(ms, mt, this.bounds[2 * (position - 1)]!, this.bounds[2 * (position - 1) + 1]!) <= 0
      ) {
        continue;
      }
      const left: number[] = [];
      const right: number[] = [];
      for (let e = 0; e < list.length; e += F) {
        const fragment = list.slice(e, e + F);
        if (cmpKey(list[e + 1]!, list[e + 2]!, ms, mt) < 0) left.push(...fragment);
        if (cmpKey(list[e + 3]!, list[e + 4]!, ms, mt) >= 0) right.push(...fragment);
      }
      if (left.length === 0 || Math.max(left.length, right.length) >= list.length) continue;
      const newId = this.pageIds.length;
      this.entries.set(id, left);
      this.entries.set(newId, right);
      this.dirty.add(id);
      this.dirty.add(newId);
      this.pageIds.splice(position + 1, 0, newId);
      // page at position p > 0 has its lower bound at bounds[2(p-1)]
      this.bounds.splice(2 * position, 0, ms, mt);
      return;
    }
  }

  /** The pages changed by this append, to store. */
  written(): MetricChunkDirDoc[] {
    return [...this.dirty]
      .sort((a, b) => a - b)
      .map((page) => ({ series: this.seriesId, page, entries: this.entries.get(page)! }));
  }
}
