// The lab's WireGuard keys are made like the sidecar's (src/quantum/keys.ts).
export { generateKeyPair, type KeyPair } from '../quantum/keys.js';
