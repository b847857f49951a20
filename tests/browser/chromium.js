// How every test launches Chromium: Debian's /usr/bin/chromium (never a
// downloaded one), headless, quiet. WebMCP is a feature flag in Chromium 156;
// a spec that plays a browser without it launches with WITHOUT_WEBMCP.
const QUIET = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

export const executablePath = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
export const WITH_WEBMCP = { executablePath, args: [...QUIET, "--enable-features=WebMCP"] };
export const WITHOUT_WEBMCP = { executablePath, args: QUIET };
