import { Module } from '@nestjs/common';

/** Shell of the model registry and governance: arrives with the registry issue. */
@Module({})
export class RegistryModule {}
