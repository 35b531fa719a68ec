// The dashboard in a real browser (run by scripts/test-browser): counts read
// off the overview, a unit's error history, retrying a dead letter by
// clicking, a read token's view and a forged action, and the overview
// updating live as items complete. Screenshots go to $SCREENSHOTS.
"use strict";
const assert = require("node:assert/strict");
const path = require("node:path");
const { chromium } = require(process.env.PLAYWRIGHT_CORE);

const base = process.env.BASE_URL;
const tokens = {
  producer: process.env.BROWSER_PRODUCER_TOKEN,
  reader: process.env.BROWSER_READER_TOKEN,
  ops: process.env.BROWSER_OPS_TOKEN,
};

async function api(method, url, token, body) {
  const response = await fetch(base + url, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, json: await response.json().catch(() => null) };
}

async function enqueue(item) {
  const created = await api("POST", "/v1/items", tokens.producer, item);
  assert.equal(created.status, 201, JSON.stringify(created.json));
  return created.json.id;
}

async function waitFor(what, check, limitMs = 30000) {
  const started = Date.now();
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() - started > limitMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function item(id) {
  return (await api("GET", `/v1/items/${id}`, tokens.reader)).json;
}

async function signIn(browser, token) {
  const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  const page = await context.newPage();
  await page.goto(base + "/ui");
  assert.match(page.url(), /\/ui\/login$/, "an anonymous visit goes to the sign-in form");
  await page.fill("input[name=token]", token);
  await page.click("button:has-text('Sign in')");
  await page.waitForURL(base + "/ui");
  return page;
}

const cell = (page, taskType, field) =>
  page.locator(`tr[data-task-type="${taskType}"] [data-field="${field}"]`);

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM,
    args: ["--no-sandbox"],
  });
  try {
    // A queue in several states.
    const done = [];
    for (let n = 0; n < 3; n++) {
      done.push(await enqueue({ task_type: "echo", work_unit_key: `conversation-${n}`, payload: { n } }));
    }
    const dead = await enqueue({ task_type: "fail", work_unit_key: "conversation-9", payload: "permanent" });
    for (let n = 0; n < 2; n++) {
      await enqueue({ task_type: "unserved", work_unit_key: "conversation-7", payload: { n } });
    }
    for (const id of done) await waitFor(`item ${id} done`, async () => (await item(id)).state === "done");
    await waitFor(`item ${dead} dead`, async () => (await item(dead)).state === "dead");

    // The overview's counts, read off the page.
    const ops = await signIn(browser, tokens.ops);
    assert.equal(await cell(ops, "echo", "done").innerText(), "3");
    assert.equal(await cell(ops, "fail", "dead").innerText(), "1");
    assert.equal(await cell(ops, "unserved", "pending").innerText(), "2");
    assert.equal(await cell(ops, "unserved", "in-flight").innerText(), "0");
    await ops.waitForSelector("#chart canvas");
    await ops.screenshot({ path: path.join(process.env.SCREENSHOTS, "dashboard-overview.png"), fullPage: true });
    console.log("ok: overview counts");

    // A unit's page shows its error history.
    await ops.goto(`${base}/ui/unit?task_type=fail&key=conversation-9`);
    await ops.click(`tr[data-item="${dead}"] summary`);
    await ops.getByText("asked to fail permanently").last().waitFor();
    assert.equal(await ops.locator("table.errors tbody tr").count(), 1);
    await ops.screenshot({ path: path.join(process.env.SCREENSHOTS, "dashboard-unit.png"), fullPage: true });
    console.log("ok: unit error history");

    // Retry the dead letter by clicking: confirm, and the host runs it again.
    await ops.goto(`${base}/ui/dead`);
    await ops.screenshot({ path: path.join(process.env.SCREENSHOTS, "dashboard-dead-letters.png"), fullPage: true });
    await ops.check(`input[name=id][value="${dead}"]`);
    await ops.click("button:has-text('Retry selected')");
    await ops.getByText("This will retry 1 dead letter").waitFor();
    await ops.click("button:has-text('Yes, retry 1')");
    await ops.getByText("Retried 1 dead letter").waitFor();
    const again = await waitFor("the retried item to run", async () => {
      const it = await item(dead);
      return it.state === "dead" && it.errors.length === 2 ? it : null;
    });
    assert.equal(again.attempts, 1);
    console.log("ok: retry by clicking, processed again");

    // A read token sees no action buttons, and forged actions are refused.
    const reader = await signIn(browser, tokens.reader);
    await reader.goto(`${base}/ui/dead`);
    await reader.locator(`tr[data-item="${dead}"]`).waitFor();
    assert.equal(await reader.locator("button:has-text('Retry'), button:has-text('Purge')").count(), 0);
    assert.equal(await reader.locator("input[type=checkbox]").count(), 0);
    const readerCsrf = await reader.locator("input[name=csrf]").first().inputValue();
    const asReader = await reader.request.post(`${base}/ui/dead/act`, {
      form: { csrf: readerCsrf, action: "purge-all" },
      maxRedirects: 0,
    });
    assert.equal(asReader.status(), 403);
    const forged = await ops.request.post(`${base}/ui/dead/act`, {
      form: { action: "purge-all" },
      maxRedirects: 0,
    });
    assert.equal(forged.status(), 403);
    const wrong = await ops.request.post(`${base}/ui/dead/act`, {
      form: { csrf: readerCsrf, action: "purge-all" },
      maxRedirects: 0,
    });
    assert.equal(wrong.status(), 403);
    assert.equal((await item(dead)).state, "dead", "the refused purges touched nothing");
    console.log("ok: read-only view, forged actions refused");

    // The overview updates live, without a reload, as delayed items complete.
    await ops.goto(`${base}/ui`);
    await ops.evaluate(() => {
      window.notReloaded = true;
    });
    const late = [];
    for (let n = 0; n < 4; n++) {
      late.push(await enqueue({ task_type: "echo", work_unit_key: `late-${n}`, payload: { n }, delay: "3s" }));
    }
    await cell(ops, "echo", "pending").filter({ hasText: /^4$/ }).waitFor({ timeout: 10000 });
    await cell(ops, "echo", "done").filter({ hasText: /^7$/ }).waitFor({ timeout: 30000 });
    assert.equal(await cell(ops, "echo", "pending").innerText(), "0");
    assert.equal(await ops.evaluate(() => window.notReloaded), true, "updated in place");
    console.log("ok: live updates");
  } finally {
    await browser.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
