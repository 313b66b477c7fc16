import * as grpc from '@grpc/grpc-js';
import { registryLookupV1 as v1 } from '@ledgerflow/contracts';
import { callUnary, unaryHandler, type GrpcServiceBinding } from './grpc-call.js';
import { serviceCallOptions } from './service-token.js';
import type { CallContext, RegistryLookup } from './ports.js';

const SERVICE = 'ledgerflow.registry.v1.RegistryLookupService';

/** RegistryLookup over gRPC: how the artifact store asks registry-governance. */
export class GrpcRegistryLookup implements RegistryLookup {
  private readonly client: v1.RegistryLookupServiceClient;

  constructor(
    address: string,
    private readonly deadlineMs = 10_000,
    /** LEDGERFLOW_SERVICE_TOKEN, sent with every call. */
    serviceToken?: string,
  ) {
    this.client = new v1.RegistryLookupServiceClient(
      address,
      grpc.credentials.createInsecure(),
      serviceCallOptions(serviceToken),
    );
  }

  async modelVersionLocation(
    name: string,
    version: number,
    call?: CallContext,
  ): Promise<string | undefined> {
    const res = await callUnary(
      SERVICE,
      'GetModelVersionLocation',
      this.client.getModelVersionLocation.bind(this.client),
      { name, version: String(version) },
      call,
      this.deadlineMs,
    );
    return res.found ? res.location : undefined;
  }

  close(): void {
    this.client.close();
  }
}

/** Serves a RegistryLookup (registry-governance's in-process one). */
export function registryLookupBinding(
  lookup: RegistryLookup,
  log: (message: string) => void,
): GrpcServiceBinding {
  const implementation: v1.RegistryLookupServiceServer = {
    getModelVersionLocation: unaryHandler(
      SERVICE,
      'GetModelVersionLocation',
      async (
        req: v1.GetModelVersionLocationRequest,
        call,
      ): Promise<v1.GetModelVersionLocationResponse> => {
        if (!/^\d{1,9}$/.test(req.version)) return { found: false, location: '' };
        const location = await lookup.modelVersionLocation(req.name, Number(req.version), call);
        return location === undefined ? { found: false, location: '' } : { found: true, location };
      },
      log,
    ),
  };
  return {
    name: SERVICE,
    definition: v1.RegistryLookupServiceService,
    implementation,
  };
}
