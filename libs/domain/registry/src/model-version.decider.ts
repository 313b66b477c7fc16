import { notFound, type Decider } from '@ledgerflow/contracts';
import type { ModelVersionEvent } from './registry.events.js';

/**
 * Commands on a version's own stream. `live` is the fact from the registered-model stream that the
 * version exists and is not deleted (loaded just before deciding; the model stream owns existence).
 */
interface VersionTarget {
  readonly modelId: string;
  readonly name: string;
  readonly version: number;
  readonly live: boolean;
  /** Tag keys the version was created with (they are on the model stream's creation event). */
  readonly initialTagKeys: readonly string[];
}

export type ModelVersionCommand =
  | (VersionTarget & { readonly type: 'UpdateModelVersion'; readonly description: string })
  | (VersionTarget & {
      readonly type: 'SetModelVersionTag';
      readonly key: string;
      readonly value: string;
    })
  | (VersionTarget & { readonly type: 'DeleteModelVersionTag'; readonly key: string });

export interface ModelVersionState {
  readonly description: string | null;
  /** Tags set or deleted on this stream (value null: deleted here). */
  readonly tags: ReadonlyMap<string, string | null>;
}

function requireLive(c: VersionTarget): void {
  if (!c.live) throw notFound(`Model Version (name=${c.name}, version=${c.version}) not found`);
}

const ref = (c: VersionTarget) => ({ modelId: c.modelId, name: c.name, version: c.version });

/** A model version's annotations (stream `model-version-<modelId>-<version>`). */
export const modelVersionDecider: Decider<
  ModelVersionCommand,
  ModelVersionState,
  ModelVersionEvent
> = {
  initialState: () => ({ description: null, tags: new Map() }),

  decide(command, state) {
    requireLive(command);
    switch (command.type) {
      case 'UpdateModelVersion':
        return [
          {
            type: 'ModelVersionDescriptionUpdated',
            data: { ...ref(command), description: command.description },
          },
        ];
      case 'SetModelVersionTag':
        return [
          {
            type: 'ModelVersionTagSet',
            data: { ...ref(command), key: command.key, value: command.value },
          },
        ];
      case 'DeleteModelVersionTag':
        // MLflow: deleting a missing model-version tag is a no-op
        {
          const here = state.tags.get(command.key);
          const exists =
            here === undefined ? command.initialTagKeys.includes(command.key) : here !== null;
          if (!exists) return [];
        }
        return [{ type: 'ModelVersionTagDeleted', data: { ...ref(command), key: command.key } }];
    }
  },

  evolve(state, event) {
    switch (event.type) {
      case 'ModelVersionDescriptionUpdated':
        return { ...state, description: event.data.description };
      case 'ModelVersionTagSet': {
        const tags = new Map(state.tags);
        tags.set(event.data.key, event.data.value);
        return { ...state, tags };
      }
      case 'ModelVersionTagDeleted': {
        const tags = new Map(state.tags);
        tags.set(event.data.key, null);
        return { ...state, tags };
      }
    }
  },
};
