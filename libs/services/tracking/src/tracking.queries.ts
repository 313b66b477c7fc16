import { Inject, Injectable } from '@nestjs/common';
import { notFound } from '@ledgerflow/contracts';
import {
  searchExperiments,
  type ExperimentDoc,
  type ExperimentSearch,
  type RunDoc,
} from '@ledgerflow/domain-tracking';
import type { ProjectionRunner, ReadModelReader } from '@ledgerflow/projections';
import { runStream } from '@ledgerflow/domain-tracking';
import { PROJECTION_RUNNER, READ_MODEL_READER } from './tokens.js';
import { EXPERIMENTS, RUNS, trackingProjection } from './tracking.projection.js';

const trackingProjectionName = trackingProjection.name;

/** The read side of tracking: answers from the read models only. */
@Injectable()
export class TrackingQueries {
  constructor(
    @Inject(READ_MODEL_READER) private readonly reader: ReadModelReader,
    @Inject(PROJECTION_RUNNER) private readonly projections: ProjectionRunner,
  ) {}

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

  /**
   * A run as the tracking read model shows it. While a write was answered ahead of the read
   * models (readYourWrites gave up waiting), the run is rebuilt from its own stream instead, so the
   * answer to that write (runs/create returns the run) and reads right after it show the run; its
   * latest metrics then come from the run's own stream only (not from gRPC-ingested batches).
   */
  async run(runId: string): Promise<RunDoc> {
    const reader = this.projections.behind()
      ? await this.projections.viewOfStreams(trackingProjectionName, [runStream(runId)])
      : this.reader;
    const doc = await reader.get<RunDoc>(RUNS, runId);
    if (doc === undefined) throw notFound(`Run with id=${runId} not found`);
    return doc;
  }
}
