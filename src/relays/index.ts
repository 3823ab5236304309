// Mullvad's relay list: parsing (relay.ts), locations (match.ts), the cache
// file (cache.ts) and the fetch-through-the-tunnel lifecycle (fetcher.ts).
// Used by the exit pool (src/proxy) and by location-based tunnels.
export { parseRelayList, relaysFrom, RelayListError, MAX_RELAY_LIST_BYTES, DEFAULT_SOCKS_PORT, type Relay, type RelayList } from './relay.js';
export { parseLocation, describeLocation, combineLocations, relayInLocation, matchRelays, summarizeCities, isExit, type Location, type CitySummary } from './match.js';
export { loadRelayCache, saveRelayCache, type CachedRelayList } from './cache.js';
export { RelayListSource, DEFAULT_RELAY_LIST_URL, RELAY_LIST_REFRESH_MS, type RelayFetch, type RelayListSourceOptions, type RefreshResult, type RelayListStats } from './fetcher.js';
