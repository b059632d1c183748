export { formatProblem, SpecError, type SpecProblem } from './errors.ts';
export { SCHEMA_ID, specJsonSchema, specJsonSchemaText } from './json-schema.ts';
export { MAX_SPEC_BYTES, type ParseSpecOptions, parseSpec, parseSpecText } from './parse.ts';
export { type RawSpec, specSchema } from './schema.ts';
export type {
  Spec,
  SpecChart,
  SpecChartImages,
  SpecChartSource,
  SpecFile,
  SpecImage,
  SpecRelease,
  SpecVerifyRule,
} from './types.ts';
