import { Global, Inject, Injectable, Module } from '@nestjs/common';
import { REGISTRY_LOOKUP, type RegistryLookup } from '@ledgerflow/service-calls';
import { RegistryQueries } from './registry.queries.js';

/**
 * RegistryLookup answered in process from the registry read models: what the artifact module uses
 * in embedded mode, and what registry-governance serves over gRPC in distributed mode. An unknown
 * model or version is RESOURCE_DOES_NOT_EXIST with the registry's own message.
 */
@Injectable()
export class InProcessRegistryLookup implements RegistryLookup {
  constructor(@Inject(RegistryQueries) private readonly queries: RegistryQueries) {}

  async modelVersionLocation(name: string, version: number): Promise<string> {
    const doc = await this.queries.version(name, version);
    return doc.storage_location || doc.source;
  }
}

/** Provides REGISTRY_LOOKUP to every module of the process (global); imported by RegistryModule. */
@Global()
@Module({
  providers: [
    RegistryQueries,
    InProcessRegistryLookup,
    { provide: REGISTRY_LOOKUP, useExisting: InProcessRegistryLookup },
  ],
  exports: [REGISTRY_LOOKUP, InProcessRegistryLookup],
})
export class RegistryLookupModule {}
