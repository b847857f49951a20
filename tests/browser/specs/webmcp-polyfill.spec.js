// WebMCP in a browser without it: Chromium launched without --enable-features=WebMCP,
// where document.modelContext does not exist. A page that loads the
// @mcp-b/webmcp-polyfill script gets the bridge's tools on the polyfill's
// document.modelContext; with only navigator.modelContext (older Chromium
// builds), they go there. An agent calls them the way it calls native ones.
import { test, expect } from "@playwright/test";
import { WITHOUT_WEBMCP } from "../chromium.js";
import { BUILTIN_TOOLS, nativeAgent, watchErrors } from "./helpers.js";

test.use({ launchOptions: WITHOUT_WEBMCP });

const rand = () => Math.random().toString(36).slice(2, 8);

const BUILTIN = BUILTIN_TOOLS;

async function openPage(page, agent, polyfill) {
  const query = polyfill ? `&polyfill=${polyfill}` : "";
  await page.goto(`${process.env.PAGES_URL}/user.html?agent=${agent}${query}`);
  await page.waitForFunction(() => window.ready === true, null, { timeout: 10_000 });
}

/** Calls a tool through `owner.modelContext` the polyfill's way (input as JSON text); returns the parsed result. */
async function execute(page, owner, name, input) {
  return page.evaluate(
    async ({ owner, name, input }) => {
      const mc = (owner === "navigator" ? navigator : document).modelContext;
      const tool = (await mc.getTools()).find((t) => t.name === name);
      if (!tool) throw new Error(`no tool ${name}`);
      const out = await mc.executeTool(tool, JSON.stringify(input));
      return typeof out === "string" ? JSON.parse(out) : out;
    },
    { owner, name, input },
  );
}

const toolsOn = (page, owner) =>
  page.evaluate(async (owner) => {
    const mc = (owner === "navigator" ? navigator : document).modelContext;
    return (await mc.getTools()).map((t) => t.name);
  }, owner);

test("without WebMCP and without a polyfill the bridge says so and registers nothing", async ({ page }) => {
  const errors = watchErrors(page);
  await openPage(page, `page-${rand()}`, null);
  expect(await page.evaluate(() => document.modelContext)).toBeUndefined();
  expect(await page.evaluate(() => [...window.registered])).toEqual([]);
  expect(await page.evaluate(() => window.registered.provider)).toBeNull();
  await page.waitForFunction(() => window.bridge.state().health.components.webmcp, null, { timeout: 5_000 });
  const state = await page.evaluate(() => window.bridge.state());
  expect(state.webmcp.available).toBe(false);
  expect(state.webmcp.provider).toBeUndefined();
  expect(state.health.components.webmcp.status).not.toBe("healthy");
  expect(state.health.components.webmcp.detail).toMatch(/polyfill/);
  await page.evaluate(() => window.bridge.stop());
  errors.expectNone();
});

for (const owner of ["document", "navigator"]) {
  test(`with the polyfill's ${owner}.modelContext an agent calls the bridge's tools`, async ({ page }) => {
    const errors = watchErrors(page);
    // The polyfill warns once that navigator.modelContext is deprecated: expected here.
    const pageAgent = `page-${rand()}`;
    const native = await nativeAgent(`native-${rand()}`);
    await openPage(page, pageAgent, owner);
    const provider = owner === "document" ? "polyfill" : "navigator";

    expect(await page.evaluate(() => [...window.registered])).toEqual(BUILTIN);
    expect(await page.evaluate(() => window.registered.provider)).toBe(provider);
    expect(await toolsOn(page, owner)).toEqual(expect.arrayContaining(BUILTIN));
    await page.waitForFunction(
      () => {
        const s = window.bridge.state();
        return s.sockets.agents.state === "open" && s.health.components.webmcp?.status === "healthy";
      },
      null,
      { timeout: 10_000 },
    );

    const os = await execute(page, owner, "get_os_state", { sections: ["webmcp"] });
    expect(os.isError, JSON.stringify(os)).toBeFalsy();
    const webmcp = JSON.parse(os.content[0].text).webmcp;
    expect(webmcp).toEqual({ available: true, provider, tools: BUILTIN });

    const sent = await execute(page, owner, "send_a2a_message", {
      to: native.agentName,
      message_type: "greeting",
      content: { via: owner },
    });
    expect(sent.isError, JSON.stringify(sent)).toBeFalsy();
    const msg = await native.waitFor((f) => f.type === "message", "the message from the page");
    expect(msg.from).toBe(pageAgent);
    expect(msg.content).toEqual({ via: owner });
    native.send({ type: "ack", id: msg.id, from: msg.from });

    // The other five answer through the polyfill too (trigger_evolution has no handler here: an error result).
    const results = {
      reliability_get_status: await execute(page, owner, "reliability_get_status", {}),
      discover_a2a_agents: await execute(page, owner, "discover_a2a_agents", { capability: "native" }),
      a2a_broadcast: await execute(page, owner, "a2a_broadcast", { message_type: "hello", content: { via: owner } }),
      send_llm_prompt: await execute(page, owner, "send_llm_prompt", { prompt: "ping", max_tokens: 8 }),
      trigger_evolution: await execute(page, owner, "trigger_evolution", { params: { g: 1 }, timeout_ms: 500 }),
    };
    for (const name of ["reliability_get_status", "discover_a2a_agents", "a2a_broadcast", "send_llm_prompt"]) {
      expect(results[name].isError, `${name}: ${JSON.stringify(results[name])}`).toBeFalsy();
    }
    expect(JSON.parse(results.discover_a2a_agents.content[0].text).map((a) => a.agent)).toContain(native.agentName);
    expect(JSON.parse(results.send_llm_prompt.content[0].text).text).toBe("fixture says: ping");
    expect(results.trigger_evolution.isError).toBe(true);
    expect(results.trigger_evolution.content[0].text).toMatch(/no_handler/);

    // stop() unregisters every tool through the AbortSignal the polyfill honours.
    await page.evaluate(() => window.bridge.stop());
    const remaining = await toolsOn(page, owner);
    for (const name of BUILTIN) expect(remaining).not.toContain(name);
    native.close();
    errors.expectNone();
  });
}
