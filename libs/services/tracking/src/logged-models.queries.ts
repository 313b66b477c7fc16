import { Inject, Injectable } from '@nestjs/common';
import {
  loggedModelNotFound,
  loggedModelStream,
  searchLoggedModels,
  type LoggedModelDoc,
  type LoggedModelSearch,
} from '@ledgerflow/domain-tracking';
import type { ProjectionRunner, ReadModelReader } from '@ledgerflow/projections';
import { LOGGED_MODELS, loggedModelsProjection } from './logged-models.projection.js';
import { PROJECTION_RUNNER, READ_MODEL_READER } from './tokens.js';

/** The read side of logged models: answers from the logged-models read model only. */
@Injectable()
export class LoggedModelQueries {
  constructor(
    @Inject(READ_MODEL_READER) private readonly reader: ReadModelReader,
    @Inject(PROJECTION_RUNNER) private readonly projections: ProjectionRunner,
  ) {}

  /**
   * A logged model; a deleted one only when `allowDeleted` (MLflow's allow_deleted). While a write
   * was answered ahead of the read models, it is rebuilt from its own stream (see
   * ProjectionRunner.readYourWrites); its metrics then come from that stream only.
   */
  async model(modelId: string, allowDeleted = false): Promise<LoggedModelDoc> {
    const reader = this.projections.behind()
      ? await this.projections.viewOfStreams(loggedModelsProjection.name, [
          loggedModelStream(modelId),
        ])
      : this.reader;
    const doc = await reader.get<LoggedModelDoc>(LOGGED_MODELS, modelId);
    if (doc === undefined || (!allowDeleted && doc.lifecycle_stage === 'deleted'))
      throw loggedModelNotFound(modelId);
    return doc;
  }

  /** Searches the experiments the caller may read (`readable`; the others are left out). */
  async search(
    query: LoggedModelSearch,
    readable?: (experimentId: string) => boolean,
  ): Promise<{ models: LoggedModelDoc[]; nextPageToken?: string }> {
    const docs: LoggedModelDoc[] = [];
    for (const id of new Set(query.experimentIds))
      if (readable === undefined || readable(id))
        docs.push(...(await this.reader.find<LoggedModelDoc>(LOGGED_MODELS, 'experiment_id', id)));
    return searchLoggedModels(docs, query);
  }
}
