import { Inject, Injectable } from '@nestjs/common';
import {
  prepareRunSearch,
  searchPrepared,
  type RunDoc,
  type RunSearch,
  type RunSearchResult,
} from '@ledgerflow/domain-tracking';
import type { ReadModelReader } from '@ledgerflow/projections';
import { READ_MODEL_READER } from './tokens.js';
import { RUNS } from './tracking.projection.js';

/** runs/search over the runs read model. */
@Injectable()
export class RunSearchQueries {
  constructor(@Inject(READ_MODEL_READER) private readonly reader: ReadModelReader) {}

  /**
   * Validates the query first, then reads only the requested experiments' runs (indexed). The runs
   * collection is cached: each experiment's list is the same frozen array until one of its runs
   * changes, so the search's column views of it are reused across queries.
   */
  async search(
    query: RunSearch,
    readable?: (experimentId: string) => boolean,
  ): Promise<RunSearchResult> {
    const prepared = prepareRunSearch(query);
    const docs: RunDoc[][] = [];
    for (const experimentId of prepared.experimentIds) {
      // experiments the caller may not read are left out (as MLflow's auth app filters them)
      if (readable !== undefined && !readable(experimentId)) continue;
      docs.push(await this.reader.find<RunDoc>(RUNS, 'experiment_id', experimentId));
    }
    return searchPrepared(docs, prepared);
  }
}
