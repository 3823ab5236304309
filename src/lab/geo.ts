// The lab's fake relays are named like real Mullvad relays so that server
// selection by location prefix (`se`, `se-sto`) can be tested. Pure data.

export interface RelayLocation {
  country: string;
  countryCode: string;
  city: string;
  cityCode: string;
  latitude: number;
  longitude: number;
}

const LOCATIONS: readonly RelayLocation[] = [
  { countryCode: 'se', country: 'Sweden', cityCode: 'sto', city: 'Stockholm', latitude: 59.3289, longitude: 18.0649 },
  { countryCode: 'se', country: 'Sweden', cityCode: 'got', city: 'Gothenburg', latitude: 57.7089, longitude: 11.9746 },
  { countryCode: 'de', country: 'Germany', cityCode: 'fra', city: 'Frankfurt', latitude: 50.1109, longitude: 8.6821 },
  { countryCode: 'nl', country: 'Netherlands', cityCode: 'ams', city: 'Amsterdam', latitude: 52.3676, longitude: 4.9041 },
  { countryCode: 'ch', country: 'Switzerland', cityCode: 'zrh', city: 'Zurich', latitude: 47.3769, longitude: 8.5417 },
  { countryCode: 'gb', country: 'UK', cityCode: 'lon', city: 'London', latitude: 51.5074, longitude: -0.1278 },
  { countryCode: 'us', country: 'USA', cityCode: 'nyc', city: 'New York, NY', latitude: 40.7128, longitude: -74.006 },
  { countryCode: 'jp', country: 'Japan', cityCode: 'tyo', city: 'Tokyo', latitude: 35.6762, longitude: 139.6503 },
];

/** Relay i (1-based) gets location i-1 (cycling) and the number i: se-sto-wg-001, se-got-wg-002, de-fra-wg-003 … */
export function relayLocation(index: number): RelayLocation {
  const loc = LOCATIONS[(index - 1) % LOCATIONS.length];
  if (!loc) throw new Error(`no location for relay ${index}`);
  return loc;
}

export function relayName(index: number): string {
  const loc = relayLocation(index);
  return `${loc.countryCode}-${loc.cityCode}-wg-${String(index).padStart(3, '0')}`;
}

/** Where a caller that is not a relay appears to be (the "ISP" of the lab). */
export const NON_RELAY_LOCATION: RelayLocation = {
  countryCode: 'xx', country: 'Labland', cityCode: 'lab', city: 'Podville', latitude: 0, longitude: 0,
};
