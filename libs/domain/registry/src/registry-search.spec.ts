import type { RegisteredModelDoc } from './registry-docs.js';
import { searchRegisteredModels } from './registry-search.js';

const doc = (name: string, tags: Record<string, string> = {}, updated = 0): RegisteredModelDoc => ({
  model_id: name,
  name,
  creation_timestamp: 0,
  last_updated_timestamp: updated,
  user_id: '',
  description: '',
  tags: Object.entries(tags).map(([key, value]) => ({ key, value })),
  aliases: [],
  revision: 0,
});

describe('registered model search', () => {
  const docs = [
    doc('fraud', { domain: 'payments' }, 3),
    doc('churn', {}, 2),
    doc('summarize', { 'mlflow.prompt.is_prompt': 'true', domain: 'payments' }, 1),
  ];
  const names = (filter?: string, orderBy?: string[]) =>
    searchRegisteredModels(docs, {
      maxResults: 100,
      ...(filter === undefined ? {} : { filter }),
      ...(orderBy === undefined ? {} : { orderBy }),
    }).models.map((m) => m.name);

  it('hides prompts the way the MLflow client asks for it', () => {
    const clientFilter = "tags.domain = 'payments' AND tag.`mlflow.prompt.is_prompt` != 'true'";
    expect(names(clientFilter)).toEqual(['fraud']);
    expect(names("tag.`mlflow.prompt.is_prompt` != 'true'")).toEqual(['churn', 'fraud']);
    expect(names("tags.`mlflow.prompt.is_prompt` = 'true'")).toEqual(['summarize']);
  });

  it('orders by name by default and by last update on request, name as the tie-break', () => {
    expect(names()).toEqual(['churn', 'fraud']);
    expect(names(undefined, ['timestamp DESC'])).toEqual(['fraud', 'churn']);
    expect(() => names(undefined, ['creation_timestamp'])).toThrow('Invalid order by key');
    expect(() => names("run_id = 'x'")).toThrow();
  });
});
