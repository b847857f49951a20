// The bridge's WebMCP tools, called the way an AI agent calls them: through
// document.modelContext.executeTool in Chromium with --enable-features=WebMCP,
// on a page that imports the module like any user's page script.
import { test, expect } from "@playwright/test";
import { BUILTIN_TOOLS, backendUrl, nativeAgent, watchErrors } from "./helpers.js";

const rand = () => Math.random().toString(36).slice(2, 8);

// A user's page on its own local origin (a secure context: WebMCP needs one),
// importing the module from the backend like any page script.
async function openPage(page, agent) {
  await page.goto(`${process.env.PAGES_URL}/user.html?agent=${agent}`);
  await page.waitForFunction(() => window.ready === true, null, { timeout: 10_000 });
}

/** Runs a tool through WebMCP; returns the parsed result. */
async function execute(page, name, input) {
  return page.evaluate(
    async ({ name, input }) => {
      const tools = await document.modelContext.getTools();
      const tool = tools.find((t) => t.name === name);
      if (!tool) throw new Error(`no tool ${name}; have ${tools.map((t) => t.name)}`);
      const out = await document.modelContext.executeTool(tool, input);
      return typeof out === "string" ? JSON.parse(out) : out;
    },
    { name, input },
  );
}

const BUILTIN = BUILTIN_TOOLS;

test("an agent calls the bridge's tools through document.modelContext", async ({ page }) => {
  const errors = watchErrors(page);
  const pageAgent = `page-${rand()}`;
  const native = await nativeAgent(`native-${rand()}`);
  await openPage(page, pageAgent);

  expect(await page.evaluate(() => window.registered)).toEqual(BUILTIN);
  const listed = await page.evaluate(async () => (await document.modelContext.getTools()).map((t) => t.name));
  expect(listed).toEqual(expect.arrayContaining(BUILTIN));

  await page.waitForFunction(
    () => {
      const s = window.bridge.state();
      return s.health.components.backend.status === "healthy" && s.sockets.agents.state === "open" && s.sockets.evolution.state === "open";
    },
    null,
    { timeout: 10_000 },
  );

  // get_os_state: real breaker and health state.
  const os = await execute(page, "get_os_state", {});
  expect(os.isError).toBeFalsy();
  const state = JSON.parse(os.content[0].text);
  expect(state.health.components.backend.status).toBe("healthy");
  const agentBreaker = state.breakers.find((b) => b.name === "connectAgentSocket");
  expect(agentBreaker.state).toBe("closed");
  expect(agentBreaker.successes).toBeGreaterThanOrEqual(1);
  expect(state.sockets.agents.state).toBe("open");
  expect(state.webmcp.available).toBe(true);
  expect(state.webmcp.provider).toBe("native");
  expect(await page.evaluate(() => window.registered.provider)).toBe("native");
  expect(state.webmcp.tools).toEqual(BUILTIN);
  const health = await execute(page, "get_os_state", { sections: ["health"] });
  expect(Object.keys(JSON.parse(health.content[0].text))).not.toContain("breakers");

  // send_a2a_message reaches a native agent, with the page's agent as the server-stamped sender.
  const sent = await execute(page, "send_a2a_message", { to: native.agentName, message_type: "greeting", content: { hi: 1 } });
  expect(sent.isError, JSON.stringify(sent)).toBeFalsy();
  expect(JSON.parse(sent.content[0].text).status).toMatch(/^(delivered|queued)$/);
  const msg = await native.waitFor((f) => f.type === "message", "the message from the page");
  expect(msg.from).toBe(pageAgent);
  expect(msg.message_type).toBe("greeting");
  expect(msg.content).toEqual({ hi: 1 });
  native.send({ type: "ack", id: msg.id, from: msg.from });

  // discover_a2a_agents sees both.
  const found = JSON.parse((await execute(page, "discover_a2a_agents", { capability: "native" })).content[0].text);
  expect(found.map((a) => a.agent)).toContain(native.agentName);

  // send_llm_prompt goes through the backend's proxy to the OpenAI-protocol stand-in.
  const llm = await execute(page, "send_llm_prompt", { prompt: "ping", temperature: 0.1, max_tokens: 16 });
  expect(llm.isError, JSON.stringify(llm)).toBeFalsy();
  expect(JSON.parse(llm.content[0].text).text).toBe("fixture says: ping");

  // Failures are results with isError and the error code.
  const missing = await execute(page, "reliability_get_status", { backend: "no-such-breaker" });
  expect(missing.isError).toBe(true);
  expect(missing.content[0].text).toMatch(/^not_found: /);
  const noHandler = await execute(page, "trigger_evolution", { params: { g: 1 } });
  expect(noHandler.isError).toBe(true);
  expect(noHandler.content[0].text).toMatch(/^(retries_exhausted|retry_budget_exhausted|deadline_exceeded): .*no_handler/);

  // Each tool runs under its operation's name, the one the page's own method uses: one policy,
  // one breaker, one metrics entry whoever calls it.
  const OPERATION = {
    send_a2a_message: "sendA2AMessage",
    send_llm_prompt: "sendLLMPrompt",
    discover_a2a_agents: "discoverAgents",
    trigger_evolution: "evolutionRequest",
  };
  const after = JSON.parse((await execute(page, "get_os_state", { sections: ["retry"] })).content[0].text);
  for (const [tool, op] of Object.entries(OPERATION)) {
    expect(after.retry.operations[op], `${tool} as ${op}`).toBeTruthy();
    expect(after.retry.operations[tool], `no separate entry for ${tool}`).toBeUndefined();
  }
  expect(after.retry.operations.evolutionRequest.failures).toBe(1);
  const calls = after.retry.operations.discoverAgents.calls;
  await page.evaluate(() => window.bridge.discover("native"));
  const again = JSON.parse((await execute(page, "get_os_state", { sections: ["retry", "breakers"] })).content[0].text);
  expect(again.retry.operations.discoverAgents.calls, "the page's discover() adds to the same entry").toBe(calls + 1);
  expect(again.breakers.map((b) => b.name).filter((n) => /discover/i.test(n))).toEqual(["discoverAgents"]);

  // stop() unregisters every tool.
  await page.evaluate(() => window.bridge.stop());
  const remaining = await page.evaluate(async () => (await document.modelContext.getTools()).map((t) => t.name));
  for (const name of BUILTIN) expect(remaining).not.toContain(name);
  native.close();
  errors.expectNone();
});
