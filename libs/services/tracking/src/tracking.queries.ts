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

  async searchExperiments(
    query: ExperimentSearch,
  ): Promise<{ experiments: ExperimentDoc[]; nextPageToken?: string }> {
    return searchExperiments(await this.reader.scan<ExperimentDoc>(EXPERIMENTS), query);
  }

  async run(runId: string): Promise<RunDoc> {
    const doc = await this.reader.get<RunDoc>(RUNS, runId);
    if (doc === undefined) throw notFound(`Run with id=${runId} not found`);
    return doc;
  }
}
