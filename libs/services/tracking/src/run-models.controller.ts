import { Controller, HttpCode, Inject, Post } from '@nestjs/common';
import { parseModelJson } from '@ledgerflow/domain-tracking';
import { Ctx, metadataOf, Msg, type RequestContext, type RequestMessage } from '@ledgerflow/http';
import { LoggedModelCommands } from './logged-models.commands.js';
import { modelOutputs } from './logged-models.requests.js';
import { runIdOf } from './tracking.requests.js';

/** Python's str(datetime.now(timezone.utc).replace(tzinfo=None)): `YYYY-MM-DD HH:MM:SS.ffffff`. */
function pythonUtcNow(): string {
  return `${new Date().toISOString().replace('T', ' ').replace('Z', '')}000`;
}

/** A run's model links: 3.x runs/outputs and 2.x runs/log-model. */
@Controller(['api/2.0/mlflow/runs', 'ajax-api/2.0/mlflow/runs'])
export class RunModelsController {
  constructor(@Inject(LoggedModelCommands) private readonly commands: LoggedModelCommands) {}

  @Post('outputs')
  @HttpCode(200)
  async logOutputs(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    const runId = runIdOf(msg);
    const models = modelOutputs(msg);
    await this.commands.run({ type: 'LogRunOutputs', runId, models }, metadataOf(ctx));
    return {};
  }

  @Post('log-model')
  @HttpCode(200)
  async logModel(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    const runId = runIdOf(msg);
    const entry = parseModelJson(msg.requiredString('model_json'), pythonUtcNow);
    await this.commands.run({ type: 'RecordLoggedModel', runId, entry }, metadataOf(ctx));
    return {};
  }
}
