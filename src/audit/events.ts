// The `event` field of security-relevant log lines: a stable schema for log
// pipelines (docs/operations.md, "Security events"). Values never change meaning;
// new events may be added.
export const SECURITY_EVENT = {
  /** Supervisor state change: fields state, from, reason, server?. */
  stateChanged: 'state_changed',
  /** A kill-switch ruleset was installed: field firewall (summary: state, bypass, endpoint, dns). */
  killSwitchApplied: 'kill_switch_applied',
  /** KILL_SWITCH_ON_EXIT=remove took the kill switch away. */
  killSwitchRemoved: 'kill_switch_removed',
  /** One line per configuration problem (exit 78 follows). */
  configError: 'config_error',
  /** New refused destinations since the previous summary: fields count, destinations[], truncated?. */
  refusedDestinations: 'refused_destinations',
} as const;
