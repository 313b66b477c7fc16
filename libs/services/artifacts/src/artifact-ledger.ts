import { Inject, Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { EventMetadata } from '@ledgerflow/contracts';
import type { StoredBlob } from '@ledgerflow/blob-store';
import { EVENT_STORE, type EventStore } from '@ledgerflow/event-store';
import {
  ARTIFACT_DELETED,
  ARTIFACT_STORED,
  artifactOwnerOf,
  artifactStreamOf,
  type ArtifactDeletedData,
  type ArtifactStoredData,
} from './artifact.events.js';

/**
 * Records what the blob store did as events on the artifact streams: the audit trail of every
 * stored, replaced and deleted file, which `ledgerflow artifacts verify` checks the bytes against.
 */
@Injectable()
export class ArtifactLedger {
  constructor(@Inject(EVENT_STORE) private readonly events: EventStore) {}

  /** Records a stored file. */
  async stored(blob: StoredBlob, replaced: boolean, metadata: EventMetadata): Promise<void> {
    const data: ArtifactStoredData = {
      path: blob.path,
      size: blob.size,
      sha256: blob.sha256,
      replaced,
      ...artifactOwnerOf(blob.path),
    };
    await this.append(blob.path, ARTIFACT_STORED, data, metadata);
  }

  /** Records a deleted file or folder. */
  async deleted(path: string, recursive: boolean, metadata: EventMetadata): Promise<void> {
    const data: ArtifactDeletedData = { path, recursive, ...artifactOwnerOf(path) };
    await this.append(path, ARTIFACT_DELETED, data, metadata);
  }

  private async append(
    path: string,
    type: string,
    data: ArtifactStoredData | ArtifactDeletedData,
    metadata: EventMetadata,
  ): Promise<void> {
    // The bytes are already stored: the event records a fact, so it appends at any revision.
    await this.events.append(artifactStreamOf(path), 'any', [
      { id: randomUUID(), type, schemaVersion: 1, occurredAt: Date.now(), data, metadata },
    ]);
  }
}
