import { Module } from '@nestjs/common';

/** Shell of deployments and model serving: arrive with the deployment issue. */
@Module({})
export class DeploymentModule {}
