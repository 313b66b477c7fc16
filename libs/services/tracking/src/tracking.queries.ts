import { Inject, Injectable } from '@nestjs/common';
import { notFound } from '@ledgerflow/contracts';
import {
  searchExperiments,
  type ExperimentDoc,
  type ExperimentSearch,
  type RunDoc,
} from '@ledgerflow/domain-tracking';
import type { ReadModelReader } from '@ledgerflow/projections';
import { READ_MODEL_READER } from './tokens.js';
import { EXPERIMENTS, RUNS } from './tracking.projection.js';

/** The read side of tracking: answers from the read models only. */
@Injectable()
export class TrackingQueries {
  constructor(@Inject(READ_MODEL_READER) private readonly reader: ReadModelReader) {}

  async experiment(id: string): Promise<ExperimentDoc> {
    const doc = await this.reader.get<ExperimentDoc>(EXPERIMENTS, id);
    if (doc === undefined) throw notFound(`No Experiment with id=${id} exists`);
    return doc;
  }

  async experimentByName(name: string): Promise<ExperimentDoc> {
    const [doc] = await this.reader.find<ExperimentDoc>(EXPERIMENTS, 'name', name);
    if (doc === undefined) throw notFound(`Could not find experiment with name '${name}'`);
    return doc;
  }

  /**
   * search-experiments over the experiments the caller may read (`readable`, from the request's
   * read scope): filtered before the search, so paging and max_results stay right.
   */
  async searchExperiments(
    query: ExperimentSearch,
    readable?: (experimentId: string) => boolean,
  ): Promise<{ experiments: ExperimentDoc[]; nextPageToken?: string }> {
    const all = await this.reader.scan<ExperimentDoc>(EXPERIMENTS);
    return searchExperiments(
      readable === undefined ? all : all.filter((e) => readable(e.experiment_id)),
      query,
    );
  }

  async run(runId: string): Promise<RunDoc> {
    const doc = await this.reader.get<RunDoc>(RUNS, runId);
    if (doc === undefined) throw notFound(`Run with id=${runId} not found`);
    return doc;
  }
}
