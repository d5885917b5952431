/**
 * How an installed agent's Node.js runs (the systemd unit's ExecStart).
 *
 * `--lite-mode` keeps V8 from compiling optimised code. An agent wakes a few
 * times a second and does little each time, so it never needs that code,
 * but TurboFan still optimises its hot functions after about two minutes.
 * Over 300 s the installed bundle's RSS had a median of 51.8 MiB (max 54.0)
 * without the flag and 47.1 MiB (max 47.6) with it. CPU was 0.080 % of a
 * core both ways (24 ticks in 300 s). See bench/README.md.
 */
export const AGENT_NODE_FLAGS: readonly string[] = ["--lite-mode"];
