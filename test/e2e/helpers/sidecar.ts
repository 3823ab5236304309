// The e2e tests drive the sidecar through the same runner as the demo and benchmarks.
export * from '../../../src/lab/run-sidecar.js';
