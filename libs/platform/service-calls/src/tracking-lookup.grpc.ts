import * as grpc from '@grpc/grpc-js';
import { trackingLookupV1 as v1, type EventMetadata } from '@ledgerflow/contracts';
import { callUnary, unaryHandler, type GrpcServiceBinding } from './grpc-call.js';
import { serviceCallOptions } from './service-token.js';
import type {
  CallContext,
  ExperimentFacts,
  LoggedModelFacts,
  RunFacts,
  TrackingLookup,
} from './ports.js';

const SERVICE = 'ledgerflow.tracking.v1.TrackingLookupService';

function runOf(r: v1.RunFacts): RunFacts {
  return {
    run_id: r.runId,
    experiment_id: r.experimentId,
    artifact_uri: r.artifactUri,
    lifecycle_stage: r.lifecycleStage,
    status: r.status,
    user_id: r.userId,
  };
}

function modelOf(m: v1.LoggedModelFacts): LoggedModelFacts {
  return {
    model_id: m.modelId,
    experiment_id: m.experimentId,
    name: m.name,
    artifact_uri: m.artifactUri,
    lifecycle_stage: m.lifecycleStage,
    ...(m.sourceRunId === '' ? {} : { source_run_id: m.sourceRunId }),
  };
}

function experimentOf(e: v1.ExperimentFacts): ExperimentFacts {
  return {
    experiment_id: e.experimentId,
    name: e.name,
    artifact_location: e.artifactLocation,
    lifecycle_stage: e.lifecycleStage,
  };
}

/** TrackingLookup over gRPC: the distributed adapter other services use to ask tracking-ingest. */
export class GrpcTrackingLookup implements TrackingLookup {
  readonly sharesLog = false;
  private readonly client: v1.TrackingLookupServiceClient;

  constructor(
    /** `host:port` of tracking-ingest's service listener. */
    address: string,
    private readonly deadlineMs = 10_000,
    /** LEDGERFLOW_SERVICE_TOKEN, sent with every call. */
    serviceToken?: string,
  ) {
    this.client = new v1.TrackingLookupServiceClient(
      address,
      grpc.credentials.createInsecure(),
      serviceCallOptions(serviceToken),
    );
  }

  async run(runId: string, call?: CallContext): Promise<RunFacts | undefined> {
    const res = await callUnary(
      SERVICE,
      'GetRun',
      this.client.getRun.bind(this.client),
      { runId },
      call,
      this.deadlineMs,
    );
    return res.run === undefined ? undefined : runOf(res.run);
  }

  async loggedModel(modelId: string, call?: CallContext): Promise<LoggedModelFacts | undefined> {
    const res = await callUnary(
      SERVICE,
      'GetLoggedModel',
      this.client.getLoggedModel.bind(this.client),
      { modelId },
      call,
      this.deadlineMs,
    );
    return res.model === undefined ? undefined : modelOf(res.model);
  }

  experiment(experimentId: string, call?: CallContext): Promise<ExperimentFacts | undefined> {
    return this.getExperiment({ experimentId, name: '' }, call);
  }

  experimentByName(name: string, call?: CallContext): Promise<ExperimentFacts | undefined> {
    return this.getExperiment({ experimentId: '', name }, call);
  }

  private async getExperiment(
    request: v1.GetExperimentRequest,
    call?: CallContext,
  ): Promise<ExperimentFacts | undefined> {
    const res = await callUnary(
      SERVICE,
      'GetExperiment',
      this.client.getExperiment.bind(this.client),
      request,
      call,
      this.deadlineMs,
    );
    return res.experiment === undefined ? undefined : experimentOf(res.experiment);
  }

  async linkModelVersion(
    modelId: string,
    version: { readonly name: string; readonly version: string },
    metadata: EventMetadata,
  ): Promise<void> {
    await callUnary(
      SERVICE,
      'LinkModelVersion',
      this.client.linkModelVersion.bind(this.client),
      { modelId, name: version.name, version: version.version, actor: metadata.actor },
      { correlationId: metadata.correlationId },
      this.deadlineMs,
    );
  }

  close(): void {
    this.client.close();
  }
}

const ACTOR = /^[\w.@-]{1,256}$/;

/** Serves a TrackingLookup (tracking-ingest's in-process one) to the other services. */
export function trackingLookupBinding(
  lookup: TrackingLookup,
  log: (message: string) => void,
): GrpcServiceBinding {
  const h = <Req, Res>(method: string, fn: (req: Req, call: CallContext) => Promise<Res>) =>
    unaryHandler(SERVICE, method, fn, log);
  const implementation: v1.TrackingLookupServiceServer = {
    getRun: h('GetRun', async (req: v1.GetRunRequest, call): Promise<v1.GetRunResponse> => {
      const run = await lookup.run(req.runId, call);
      if (run === undefined) return {};
      return {
        run: {
          runId: run.run_id,
          experimentId: run.experiment_id,
          artifactUri: run.artifact_uri,
          lifecycleStage: run.lifecycle_stage,
          status: run.status,
          userId: run.user_id,
        },
      };
    }),
    getLoggedModel: h(
      'GetLoggedModel',
      async (req: v1.GetLoggedModelRequest, call): Promise<v1.GetLoggedModelResponse> => {
        const m = await lookup.loggedModel(req.modelId, call);
        if (m === undefined) return {};
        return {
          model: {
            modelId: m.model_id,
            experimentId: m.experiment_id,
            name: m.name,
            artifactUri: m.artifact_uri,
            sourceRunId: m.source_run_id ?? '',
            lifecycleStage: m.lifecycle_stage,
          },
        };
      },
    ),
    getExperiment: h(
      'GetExperiment',
      async (req: v1.GetExperimentRequest, call): Promise<v1.GetExperimentResponse> => {
        const e =
          req.experimentId !== ''
            ? await lookup.experiment(req.experimentId, call)
            : await lookup.experimentByName(req.name, call);
        if (e === undefined) return {};
        return {
          experiment: {
            experimentId: e.experiment_id,
            name: e.name,
            artifactLocation: e.artifact_location,
            lifecycleStage: e.lifecycle_stage,
          },
        };
      },
    ),
    linkModelVersion: h(
      'LinkModelVersion',
      async (req: v1.LinkModelVersionRequest, call): Promise<v1.LinkModelVersionResponse> => {
        await lookup.linkModelVersion(
          req.modelId,
          { name: req.name, version: req.version },
          {
            actor: ACTOR.test(req.actor) ? req.actor : 'system',
            correlationId: call.correlationId ?? `grpc-${Date.now()}`,
            causationId: null,
          },
        );
        return {};
      },
    ),
  };
  return {
    name: SERVICE,
    definition: v1.TrackingLookupServiceService,
    implementation,
  };
}
