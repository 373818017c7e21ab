/**
 * wami-bench as a library: `import { … } from 'wami-bench'`. What the CLI does, as functions that
 * return their results and never exit the process nor install signal handlers (pass an AbortSignal;
 * listen with `onEvent` / hooks). Bad input throws UsageError (the CLI's exit code 2); `exitCodeFor`
 * maps an outcome to the CLI's exit codes. See README.md, "Library".
 */

// Scenarios: define, load, validate, override.
export { defineScenario, ScenarioSchema, type Scenario, type ScenarioInput, type Stage, type Variant } from './scenarios/schema.js';
export { applyOverrides, BUILTIN_SCENARIOS, loadScenario, ScenarioError, scenarioHash, validateScenario, type Overrides } from './scenarios/load.js';
export {
  DEFAULT_FLEET_THRESHOLDS,
  evaluateFleetThresholds,
  evaluateThresholds,
  FLEET_METRICS,
  fleetThresholds,
  METRICS as THRESHOLD_METRICS,
  parseThreshold,
  type FleetView,
  type ParsedThreshold,
} from './scenarios/thresholds.js';

// Run a scenario (or a capacity search): the lifecycle, result.json and the report.
export { runScenario, runSession, summarize, type RunEvent, type RunHooks, type RunOptions, type RunOutcome, type SessionDriver } from './runner/run.js';
export type { RunHandle } from './runner/lifecycle.js';
export { capacitySession, runCapacity, type CapacitySearch } from './runner/capacity.js';

// Run a fleet against any protocol v1 server.
export { runFleet, type FleetHooks, type FleetPhase, type FleetProgress } from './clients/coordinator.js';
export { resolveFleetOptions, type ResolvedFleetOptions } from './clients/options.js';
export type { FleetPlan } from './clients/plan.js';

// Serve a database with a variant; seed one; check any server against protocol v1.
export { checkDatabase, startServer, type RunningVariantServer, type ServeWhere } from './runner/servers.js';
export { seedDatabase } from './servers/common/db.js';
export { runConformance, DEFAULT_CONFORMANCE_OPTIONS, type CheckResult, type ConformanceOptions } from './protocol/conformance.js';

// Results: load and validate, render the report, compare two results.
export { loadResult, ResultLoadError, validateResult } from './report/load.js';
export { REPORT_FORMATS, REPORT_FILES, writeReport, writeReportFiles, type ReportFormat, type ReportOptions, type WrittenFiles } from './report/index.js';
export { renderHtml } from './report/html.js';
export { renderMarkdown } from './report/markdown.js';
export { computeVerdict, integrityOf, integrityProblem, type Integrity, type Verdict } from './report/verdict.js';
export { computeDecision, SECTION_VERDICTS, type Decision, type DesignParagraph, type SectionVerdict } from './report/decision.js';
export { compareResults, environmentDifferences, refusalsOf, type CompareOptions, type Comparison, type CompareRow } from './report/compare.js';
export { measureNoise, PROJECT_NOISE_BANDS, repeatsToDecide, type NoiseBands, type NoiseFractions } from './report/noise.js';
export { compareHtml, compareMarkdown } from './report/compare-render.js';
export { toBencherBmf, toGithubActionBenchmark } from './report/exports.js';

// The model: result and fleet shapes (zod schemas with their types), options, errors, exit codes.
export * from './model/result.js';
export * from './model/fleet-result.js';
export * from './model/capacity.js';
export { CAPACITY_SEARCH_OPTIONS } from './model/capacity-search.js';
export { EXIT, exitCodeFor, type ExitCode, type Outcome } from './model/exit-codes.js';
export { UsageError } from './model/errors.js';
export { FLEET_OPTIONS, FleetConfigError, FleetOptionsSchema, GuardSchema, type FleetOptions, type GuardBounds } from './model/fleet-options.js';
export {
  BATCHED_OPTIONS,
  BatchedOptionsSchema,
  ExternalOptionsSchema,
  PER_REQUEST_OPTIONS,
  PerRequestOptionsSchema,
  SERVE_KINDS,
  VARIANT_KINDS,
  variantArgv,
  type BatchedOptions,
  type BatchedSet,
  type PerRequestOptions,
  type PerRequestSet,
  type VariantKind,
  type VariantSet,
} from './model/variants.js';
// The external kind: any protocol v1 server started by its command.
export { EXTERNAL_OPTIONS, EXTERNAL_SERVER_SHAPE, ExternalServerSchema, PLACEHOLDERS, type ExternalServer } from './model/external.js';
export { PROTOCOL_VERSION, METRIC, METRIC_NAMES, OPTIONAL_METRIC_NAMES, ERROR_CODES, type ClientUpdate, type ServerMessage } from './protocol/messages.js';
