import { z } from 'zod';
import { CHART_SOURCES, chartSchema, specSchema } from './schema.ts';

export const SCHEMA_ID = 'https://lading.dev/schema/lading.schema.json';

/**
 * The editor JSON Schema (draft 2020-12) for lading.yaml, generated from the zod schema. Adds
 * what zod cannot express: a chart has exactly one of repo, oci or path, and repo needs name.
 * schema/lading.schema.json is this, checked in (a test keeps it up to date).
 */
export function specJsonSchema(): Record<string, unknown> {
  const json = z.toJSONSchema(specSchema, {
    target: 'draft-2020-12',
    io: 'input',
    override: (ctx) => {
      if (ctx.zodSchema === chartSchema) {
        const s = ctx.jsonSchema as Record<string, unknown>;
        // Exactly one source; a repo chart also needs its name.
        s.oneOf = CHART_SOURCES.map((k) => ({ required: k === 'repo' ? ['repo', 'name'] : [k] }));
      }
    },
  }) as Record<string, unknown>;
  const { $schema, ...rest } = json;
  return { $schema, $id: SCHEMA_ID, ...rest };
}

/** The JSON text written to schema/lading.schema.json. */
export function specJsonSchemaText(): string {
  return `${JSON.stringify(specJsonSchema(), null, 2)}\n`;
}
