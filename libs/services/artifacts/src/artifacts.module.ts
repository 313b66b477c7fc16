import { Module } from '@nestjs/common';

/** Shell of artifact storage (MLflow's artifact proxy): arrives with the artifacts issue. */
@Module({})
export class ArtifactsModule {}
